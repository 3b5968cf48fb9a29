-- include: work
-- Pending work begins at attempt 0, once (a second start of the same member is a no-op).
-- KEYS[1] due: zset member -> deadline (epoch s)
-- KEYS[2] pending: hash member -> "attempt:how:sends"
-- ARGV[1] member
-- ARGV[2] deadline (epoch s)
-- Returns 1 if this call started it, 0 if it had begun.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
tq_pending(KEYS[1], KEYS[2], ARGV[1], '0', ARGV[2], '0')
return 1
