-- Take a lease if free; the work it is for (ARGV[3], '' none) is then looked at by the sweep
-- no later than just after the lease would lapse (its deadline only moves earlier).
-- KEYS[1] lease: string holding its holder's token
-- KEYS[2] due: zset member -> deadline (epoch s)
-- ARGV[1] token (the would-be holder's)
-- ARGV[2] ttl (ms)
-- ARGV[3] the work's member ('' none)
-- ARGV[4] lapse deadline (epoch s)
-- Returns 1 if taken, 0 if another holder has it.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], 'XX', 'LT', ARGV[4], ARGV[3]) end
return 1
