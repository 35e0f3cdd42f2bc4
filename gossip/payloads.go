package gossip

import (
	"container/list"
	"sync"
	"time"
)

// payloadCache keeps large payloads this node published or forwarded, so it
// can serve them to the peers it forwarded references to. It is bounded in
// bytes (oldest evicted first) and in time.
type payloadCache struct {
	maxBytes int
	ttl      time.Duration

	mu    sync.Mutex
	bytes int
	order *list.List // of *payloadEntry, oldest first
	byKey map[Hash]*list.Element
}

type payloadEntry struct {
	hash    Hash
	data    []byte
	expires time.Time
}

func newPayloadCache(maxBytes int, ttl time.Duration) *payloadCache {
	return &payloadCache{maxBytes: maxBytes, ttl: ttl, order: list.New(), byKey: make(map[Hash]*list.Element)}
}

func (c *payloadCache) put(h Hash, data []byte) {
	if len(data) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[h]; ok {
		e.Value.(*payloadEntry).expires = time.Now().Add(c.ttl)
		c.order.MoveToBack(e)
		return
	}
	c.byKey[h] = c.order.PushBack(&payloadEntry{hash: h, data: data, expires: time.Now().Add(c.ttl)})
	c.bytes += len(data)
	for c.bytes > c.maxBytes {
		c.removeOldest()
	}
}

func (c *payloadCache) get(h Hash) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for c.order.Len() > 0 && c.order.Front().Value.(*payloadEntry).expires.Before(now) {
		c.removeOldest()
	}
	e, ok := c.byKey[h]
	if !ok {
		return nil, false
	}
	return e.Value.(*payloadEntry).data, true
}

func (c *payloadCache) removeOldest() {
	e := c.order.Front()
	pe := e.Value.(*payloadEntry)
	c.order.Remove(e)
	delete(c.byKey, pe.hash)
	c.bytes -= len(pe.data)
}
