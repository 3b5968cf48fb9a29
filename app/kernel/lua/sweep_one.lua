-- One overdue member: settled (nothing pending) -> dropped; its lease held (the task runs) ->
-- looked at again just after the lease would lapse; else its task is to be sent (again), and
-- the next deadline backs off (grace * 2^sends, sends capped) so a backlog is not flooded.
-- KEYS[1] due: zset member -> deadline (epoch s)
-- KEYS[2] pending: hash member -> "attempt:how:sends" (work.lua)
-- KEYS[3] the member's lease
-- ARGV[1] member
-- ARGV[2] now (epoch s)
-- ARGV[3] grace (s)
-- ARGV[4] lease slack (s)
-- ARGV[5] cap on the sends counted in the backoff
-- Returns false (nothing to send) or {attempt, how} (how 'p': a parked wait came due; 's':
-- a sent task never started, or its worker died: sent again).
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
local attempt, how, sends = string.match(v, '^(%d+):(%a):(%d+)$')
local now = tonumber(ARGV[2])
local pttl = redis.call('PTTL', KEYS[3])
if pttl > 0 then
  redis.call('ZADD', KEYS[1], now + pttl / 1000 + tonumber(ARGV[4]), ARGV[1])
  return false
end
local n = tonumber(sends)
if how == 's' then n = n + 1 end
local wait = tonumber(ARGV[3]) * math.pow(2, math.min(n, tonumber(ARGV[5])))
redis.call('ZADD', KEYS[1], now + wait, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], attempt .. ':s:' .. n)
return {attempt, how}
