-- Extend a lease only while it is still ours, and keep the sweep's look at its work no later
-- than just after the new lapse (as in lease_acquire.lua).
-- KEYS: lease, due. ARGV: token, ttl ms, member ('' none), lapse deadline (epoch s).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[4], ARGV[3]) end
return 1
