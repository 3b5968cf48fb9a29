-- include: states
-- Prelude: every script that changes a job's status moves the job in the gauge of unfinished
-- jobs by state (keys.JOBS_BY_STATE, a hash state -> count) in the same atomic step, so the
-- gauge cannot drift from the records: tq_move(gauge key, old status, new status).
-- KEYS, ARGV: none (functions only, taking keys as arguments; `-- include: gauge`).
local function tq_move(gauge, old, new)
  if old == new then return end
  if not tq_ended(old) then redis.call('HINCRBY', gauge, old, -1) end
  if not tq_ended(new) then redis.call('HINCRBY', gauge, new, 1) end
end
