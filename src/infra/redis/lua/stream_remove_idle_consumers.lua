-- Removes dead consumers of one group, atomically (src/infra/redis/streams.rs). KEYS: the
-- stream; ARGV: group, idle (ms), the caller's own consumer (kept). A consumer is removed only
-- when it owns no pending entry and has been idle longer than `idle`: deleting one with
-- pending entries would drop them from the pending list. Returns how many were removed.
-- A missing key answers the generic `ERR no such key`: test for the key instead of
-- matching that text. A missing group is told by its error code, the first word.
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) == 'table' and consumers['err'] then
    local err = consumers['err']
    if string.match(err, '^%S+') == 'NOGROUP' then
        return 0
    end
    return redis.error_reply(err)
end
local removed = 0
for _, consumer in ipairs(consumers) do
    local name, pending, idle
    for i = 1, #consumer, 2 do
        local k = consumer[i]
        if k == 'name' then name = consumer[i + 1]
        elseif k == 'pending' then pending = consumer[i + 1]
        elseif k == 'idle' then idle = consumer[i + 1] end
    end
    if pending == 0 and idle > tonumber(ARGV[2]) and name ~= ARGV[3] then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
        removed = removed + 1
    end
end
return removed

