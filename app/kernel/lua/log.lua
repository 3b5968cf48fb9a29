-- Prelude: a job's state log (app/store/jobstore.py). Every entry is published on the log's
-- channel (long-polls wait on it); `quiet` entries (a step resuming after a wait: the wait's
-- own entry said until when) are only published. An entry whose kind `k` is the last
-- entry's kind is merged into it: `count`, `last_at` and the latest `reason`, so a run of
-- pacing waits or polls is one entry however long it lasts.
-- KEYS, ARGV: none (functions only, taking keys as arguments; `-- include: log`).
-- The channel a job's log entries are published on, from its log key (keys.job_events).
local function tq_events(log) return log .. ':events' end

local function tq_log(log, entry, quiet, ttl)
  redis.call('PUBLISH', tq_events(log), entry)
  if quiet == '1' then return end
  local new = cjson.decode(entry)
  local last = redis.call('LINDEX', log, -1)
  if new.k and last then
    local ok, prev = pcall(cjson.decode, last)
    if ok and type(prev) == 'table' and prev.k == new.k then
      prev.count = (prev.count or 1) + 1
      prev.last_at = new.at
      prev.reason = new.reason
      redis.call('LSET', log, -1, cjson.encode(prev))
      redis.call('EXPIRE', log, ttl)
      return
    end
  end
  redis.call('RPUSH', log, entry)
  redis.call('EXPIRE', log, ttl)
end
