-- Drop the tenant's claim on a vendor webhook ref, if it is the account's.
-- KEYS[1] the ref's claims (hash tenant -> account)
-- ARGV[1] tenant
-- ARGV[2] account
-- Returns 0 (always).
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
