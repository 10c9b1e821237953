"""The Lua scripts of the sessions index in Redis (``index_redis.py``): each runs atomically, so
a reader sees a session's row in every structure of the index or in none.

The index keys (``IndexKeys``, in that order as ``KEYS[2..7]`` of the writes): ``active`` and
``created`` (sorted sets: session id -> epoch seconds), ``rows`` (hash: id -> the meta.json
bytes), ``search`` (hash: id -> what ``q`` looks in), ``member`` (hash: id -> the JSON list of
the field sets holding it, so a change leaves the old ones), ``usage`` (hash: id -> JSON
``[agent id, inputs]``, for sessions with an agent). The field sets (``status:<s>``,
``agent:<id>``, ``queen:<id>``) come last in ``KEYS``. ``KEYS[1]`` is the session's meta key.
"""

from __future__ import annotations

# put_row(first_set, sid, active, created, meta, search, usage): the session's row in every
# structure; KEYS[first_set..] are its field sets.
PUT_ROW = """
local function put_row(first_set, sid, active, created, meta, search, usage)
  local old = redis.call('HGET', KEYS[6], sid)
  if old then
    for _, key in ipairs(cjson.decode(old)) do redis.call('SREM', key, sid) end
  end
  redis.call('ZADD', KEYS[2], active, sid)
  redis.call('ZADD', KEYS[3], created, sid)
  redis.call('HSET', KEYS[4], sid, meta)
  redis.call('HSET', KEYS[5], sid, search)
  local sets = {}
  for i = first_set, #KEYS do
    redis.call('SADD', KEYS[i], sid)
    sets[#sets + 1] = KEYS[i]
  end
  redis.call('HSET', KEYS[6], sid, cjson.encode(sets))
  if usage == '' then redis.call('HDEL', KEYS[7], sid)
  else redis.call('HSET', KEYS[7], sid, usage) end
  redis.call('SET', KEYS[1], meta)
end
"""

# ARGV: sid, active, created, meta bytes, search, usage ('' without an agent).
PUT = PUT_ROW + """
put_row(8, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""

# KEYS[1..7] as PUT; ARGV[1] sid. The meta and every row of the session removed.
REMOVE = """
local sid = ARGV[1]
local old = redis.call('HGET', KEYS[6], sid)
if old then
  for _, key in ipairs(cjson.decode(old)) do redis.call('SREM', key, sid) end
end
redis.call('ZREM', KEYS[2], sid)
redis.call('ZREM', KEYS[3], sid)
for i = 4, 7 do redis.call('HDEL', KEYS[i], sid) end
redis.call('DEL', KEYS[1])
"""

# KEYS[1..7] as PUT, KEYS[8] the staged stream, KEYS[9] the session's stream, KEYS[10..] the
# field sets; ARGV as PUT. The staged stream becomes the session's (without the staging ttl)
# with its meta and row, or nothing happens: EXISTS (the id is taken), NOSTAGE (expired).
COMMIT_IMPORT = PUT_ROW + """
if redis.call('EXISTS', KEYS[1], KEYS[9]) > 0 or redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1
then return redis.error_reply('EXISTS session ' .. ARGV[1]) end
if redis.call('EXISTS', KEYS[8]) == 0 then
  return redis.error_reply('NOSTAGE the staged events of ' .. ARGV[1] .. ' are gone')
end
redis.call('RENAME', KEYS[8], KEYS[9])
redis.call('PERSIST', KEYS[9])
put_row(10, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""

# KEYS[1] active, KEYS[2] created, KEYS[3] rows, KEYS[4] search, KEYS[5..4+ARGV[1]] sets the
# session must be in (agent, queen), the rest: sets it must be in one of (statuses). ARGV[2],
# ARGV[3] the activity range (ZRANGEBYSCORE bounds), ARGV[4], ARGV[5] the creation bounds ('':
# none), ARGV[6] q ('' none), ARGV[7], ARGV[8] the cursor's activity and id ('': none), ARGV[9]
# matches to skip, ARGV[10] rows to return (0: all). Returns {total, id, activity, meta, ...}:
# newest activity first, ties by id descending (bytes), as the SQLite index orders them.
QUERY = """
local required = tonumber(ARGV[1])
local cmin, cmax, q = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local cursor, cursor_id = tonumber(ARGV[7]), ARGV[8]
local skip, limit = tonumber(ARGV[9]), tonumber(ARGV[10])

local function in_sets(sid)
  for i = 5, 4 + required do
    if redis.call('SISMEMBER', KEYS[i], sid) == 0 then return false end
  end
  if #KEYS == 4 + required then return true end
  for i = 5 + required, #KEYS do
    if redis.call('SISMEMBER', KEYS[i], sid) == 1 then return true end
  end
  return false
end

local function matches(sid)
  if not in_sets(sid) then return false end
  if cmin or cmax then
    local created = tonumber(redis.call('ZSCORE', KEYS[2], sid))
    if (cmin and created < cmin) or (cmax and created > cmax) then return false end
  end
  return q == '' or string.find(redis.call('HGET', KEYS[4], sid), q, 1, true) ~= nil
end

local function bytes_below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function after_cursor(score, sid)
  if not cursor then return true end
  return score < cursor or (score == cursor and bytes_below(sid, cursor_id))
end

local found = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[2], 'WITHSCORES')
local out = {0}
for i = 1, #found, 2 do
  local sid = found[i]
  if matches(sid) then
    out[1] = out[1] + 1
    if after_cursor(tonumber(found[i + 1]), sid) then
      if skip > 0 then skip = skip - 1
      elseif limit == 0 or #out < 1 + 3 * limit then
        out[#out + 1] = sid
        out[#out + 1] = found[i + 1]
        out[#out + 1] = redis.call('HGET', KEYS[3], sid)
      end
    end
  end
end
return out
"""

# KEYS[1] usage, KEYS[2] active. Returns {agent, sessions, inputs, last activity, ...}.
USAGE = """
local rows = redis.call('HGETALL', KEYS[1])
local by_agent, out = {}, {}
for i = 1, #rows, 2 do
  local usage = cjson.decode(rows[i + 1])
  local score = redis.call('ZSCORE', KEYS[2], rows[i])
  local sums = by_agent[usage[1]]
  if not sums then
    sums = {usage[1], 0, 0, score}
    by_agent[usage[1]] = sums
    out[#out + 1] = sums
  end
  sums[2] = sums[2] + 1
  sums[3] = sums[3] + usage[2]
  if tonumber(score) > tonumber(sums[4]) then sums[4] = score end
end
local flat = {}
for _, sums in ipairs(out) do
  for _, value in ipairs(sums) do flat[#flat + 1] = value end
end
return flat
"""
