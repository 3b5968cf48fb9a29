-- Prelude: pending work and its deadline (app/dispatch). `pending` is a hash
-- member -> "attempt:how:sends" (how: 'p' parked, no message sent yet; 's' sent; sends: how
-- often the sweep has sent it again), `due` a zset member -> the time by which its task must
-- have started (or, parked, the time to send it).
-- KEYS, ARGV: none (functions only, taking keys as arguments; `-- include: work`).
local function tq_pending(due, pending, member, attempt, deadline, parked)
  local how = 's'
  if parked == '1' then how = 'p' end
  redis.call('HSET', pending, member, attempt .. ':' .. how .. ':0')
  redis.call('ZADD', due, deadline, member)
end

local function tq_settled(due, pending, member)
  redis.call('HDEL', pending, member)
  redis.call('ZREM', due, member)
end

-- The attempt pending for `member`, or nil.
local function tq_attempt(pending, member)
  local v = redis.call('HGET', pending, member)
  if not v then return nil end
  return string.match(v, '^(%d+):')
end
