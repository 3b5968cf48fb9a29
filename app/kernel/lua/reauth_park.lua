-- include: work, log, gauge, states
-- Park a job: fenced like job_write.lua (the step's lease and number, a job that has not
-- ended), then status and log entry, the index entries (NX: a redelivered step keeps the
-- first park time) and longer TTLs for the job's keys, which must outlive the wait for
-- credentials. A parked job has no pending step (it rests legitimately: the sweep leaves it
-- alone).
-- KEYS[1] job (hash)
-- KEYS[2] the job's lease
-- KEYS[3] the job's state log
-- KEYS[4] the account's parked index (zset job id -> parked at)
-- KEYS[5] the global parked index (zset)
-- KEYS[6] jobs-by-state gauge
-- KEYS[7] due, KEYS[8] pending (work.lua)
-- KEYS[9..] more of the job's keys whose TTL to extend (seen, spool blocks)
-- ARGV[1] lease token
-- ARGV[2] the step number the job must be at
-- ARGV[3] now (epoch s)
-- ARGV[4] job id
-- ARGV[5] ttl (s): the least life left to the job's keys
-- ARGV[6] the log entry
-- ARGV[7] the step's member
-- ARGV[8..] field/value pairs
-- Returns (ParkResult) 1 parked (PARKED), 0 nothing changed: the lease or step was lost, or
-- the job has ended (REFUSED).
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[2] then return 0 end
local st = redis.call('HGET', KEYS[1], 'status')
if tq_ended(st) then return 0 end
tq_move(KEYS[6], st, 'needs_reauth')
tq_settled(KEYS[7], KEYS[8], ARGV[7])
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('PUBLISH', tq_events(KEYS[3]), ARGV[6])
redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], 'NX', ARGV[3], ARGV[4])
local ttl = tonumber(ARGV[5])
for i, k in ipairs(KEYS) do
  if i == 1 or i == 3 or i > 8 then
    local left = redis.call('TTL', k)
    if left >= 0 and left < ttl then redis.call('EXPIRE', k, ttl) end
  end
end
return 1
