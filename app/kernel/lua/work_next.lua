-- include: work
-- Attempt ARGV[2] of the member ended: the next one (ARGV[3] ~= '') becomes pending with its
-- deadline, or the work is settled (ARGV[3] == ''). Only if ARGV[2] is still the pending
-- attempt: of two copies of one attempt, one moves on.
-- KEYS[1] due: zset member -> deadline (epoch s)
-- KEYS[2] pending: hash member -> "attempt:how:sends"
-- ARGV[1] member
-- ARGV[2] the attempt that ended
-- ARGV[3] the next attempt ('' none: settle the work)
-- ARGV[4] its deadline (epoch s; '' with no next attempt)
-- ARGV[5] '1' when no message is sent before the deadline (parked)
-- Returns 1 if this call moved it, 0 if ARGV[2] was not the pending attempt.
if tq_attempt(KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  tq_settled(KEYS[1], KEYS[2], ARGV[1])
else
  tq_pending(KEYS[1], KEYS[2], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
end
return 1
