-- Set fields of a token record only if it still has the version the caller read: a slow
-- writer can never overwrite a newer token.
-- KEYS[1] the account's token record (hash)
-- ARGV[1] the version the caller read
-- ARGV[2..] field/value pairs
-- Returns 1 written, 0 the version moved on (nothing written).
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
