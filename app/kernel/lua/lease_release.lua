-- Let a lease go only if it is still ours.
-- KEYS[1] lease: string holding its holder's token
-- ARGV[1] token
-- Returns 1 if let go, 0 if it was not ours (any more).
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
