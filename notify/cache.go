package notify

import (
	"sync"

	"herald"
)

// notificationCache keeps recently created notifications, which never
// change, so that delivering one does not read it back from the store. It
// holds at most size entries, forgetting the oldest first. Safe for
// concurrent use.
type notificationCache struct {
	mu    sync.Mutex
	size  int
	byID  map[string]*herald.Notification
	order []string
	next  int
}

func newNotificationCache(size int) *notificationCache {
	return &notificationCache{size: size, byID: make(map[string]*herald.Notification, size), order: make([]string, size)}
}

func (c *notificationCache) put(n *herald.Notification) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byID[n.ID]; ok {
		return
	}
	delete(c.byID, c.order[c.next])
	c.order[c.next] = n.ID
	c.next = (c.next + 1) % c.size
	stored := *n
	stored.Deliveries = nil // deliveries change; the rest does not
	c.byID[n.ID] = &stored
}

func (c *notificationCache) get(id string) (*herald.Notification, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.byID[id]
	return n, ok
}
