-- Extend a lease only while it is still ours, and keep the sweep's look at its work no later
-- than just after the new lapse (as in lease_acquire.lua).
-- KEYS[1] lease: string holding its holder's token
-- KEYS[2] due: zset member -> deadline (epoch s)
-- ARGV[1] token
-- ARGV[2] ttl (ms)
-- ARGV[3] the work's member ('' none)
-- ARGV[4] lapse deadline (epoch s)
-- Returns 1 if renewed, 0 if the lease is no longer ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[4], ARGV[3]) end
return 1
