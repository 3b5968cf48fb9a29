-- Claim the work whose deadline has passed: each member's deadline moves ARGV[3] seconds on
-- (so a second sweep, or this one crashing, leaves it for later, not lost) and it is
-- returned for `sweep_one`.
-- KEYS[1] due: zset member -> deadline (epoch s)
-- ARGV[1] now (epoch s)
-- ARGV[2] how many members at most
-- ARGV[3] claim seconds: how long a claimed member is hidden from other sweeps
-- Returns the claimed members (a list, maybe empty).
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local later = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, m in ipairs(members) do redis.call('ZADD', KEYS[1], later, m) end
return members
