-- include: work
-- Account ownership, vendor match, idempotency and the new record, with its first step
-- pending (app/dispatch: beat's sweep sends it should the caller die before it does): one
-- round trip. It also counts the new job in the metrics (the gauge of jobs by state, and the
-- transition) and keeps the tenant's job index trimmed to the jobs that may still exist.
-- Safe to run twice (redis-py retries a command whose answer was lost): a job that exists is
-- 'ok', even late. Refused as 'late' when Redis runs it after ARGV[8] (Redis's clock), before
-- the caller stops waiting for the answer: an enqueue that answered 503 created nothing (but
-- in one case: Redis stopped between running it and answering, and stayed away until every
-- retry of the caller had given up).
-- KEYS[1] account (hash: tenant_id, vendor)
-- KEYS[2] idempotency key ('' none)
-- KEYS[3] job (hash)
-- KEYS[4] the job's state log (list)
-- KEYS[5] the tenant's job index (zset job id -> created at)
-- KEYS[6] jobs-by-state gauge
-- KEYS[7] metrics (hash of counters)
-- KEYS[8] due, KEYS[9] pending (work.lua)
-- ARGV[1] tenant
-- ARGV[2] vendors the tool accepts, comma-separated
-- ARGV[3] '1': idempotent (KEYS[2] holds the job id)
-- ARGV[4] job id
-- ARGV[5] ttl (s) of the job's keys
-- ARGV[6] now (epoch s)
-- ARGV[7] the first log entry
-- ARGV[8] fresh until (epoch s, Redis's clock)
-- ARGV[9] the metrics field of the queued transition
-- ARGV[10] the first step's member, ARGV[11] its deadline
-- ARGV[12] the index's life (s: the longest a job can live)
-- ARGV[13..] the record's field/value pairs
-- Returns {code, detail} (CreateOutcome): {'ok'} created (or it existed already), {'late'}
-- nothing created, {'no_account'} not the tenant's account, {'vendor', the account's vendor}
-- the tool does not run on it, {'exists', job id} the idempotency key named a job already.
if redis.call('EXISTS', KEYS[3]) == 1 then return {'ok'} end
local t = redis.call('TIME')
if tonumber(t[1]) + tonumber(t[2]) / 1e6 > tonumber(ARGV[8]) then return {'late'} end
local owner = redis.call('HGET', KEYS[1], 'tenant_id')
if owner ~= ARGV[1] then return {'no_account'} end
local vendor = redis.call('HGET', KEYS[1], 'vendor')
if not string.find(',' .. ARGV[2] .. ',', ',' .. vendor .. ',', 1, true) then
  return {'vendor', vendor}
end
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'exists', existing} end
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
end
redis.call('HSET', KEYS[3], unpack(ARGV, 13))
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('RPUSH', KEYS[4], ARGV[7])
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[6]) - tonumber(ARGV[12]))
redis.call('EXPIRE', KEYS[5], ARGV[12])
tq_pending(KEYS[8], KEYS[9], ARGV[10], '0', ARGV[11], '0')
redis.call('HINCRBY', KEYS[6], 'queued', 1)
redis.call('HINCRBY', KEYS[7], ARGV[9], 1)
return {'ok'}
