package state

// lruLinks is an entry's place in an lruList; the caches' entry types
// embed it and return it from links.
type lruLinks[E any] struct {
	prev, next *E
	linked     bool // in a list; false while being written through or once dropped
}

// lruEntry is a pointer to an entry type that carries lruLinks.
type lruEntry[E any] interface {
	*E
	links() *lruLinks[E]
}

// lruList is an intrusive doubly linked list of cache entries, least
// recently written at head, shared by the key-value and the window and
// session caches.
type lruList[E any, P lruEntry[E]] struct{ head, tail P }

func (l *lruList[E, P]) pushBack(e P) {
	ln := e.links()
	ln.prev, ln.next, ln.linked = l.tail, nil, true
	if l.tail != nil {
		l.tail.links().next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *lruList[E, P]) pushFront(e P) {
	ln := e.links()
	ln.prev, ln.next, ln.linked = nil, l.head, true
	if l.head != nil {
		l.head.links().prev = e
	} else {
		l.tail = e
	}
	l.head = e
}

func (l *lruList[E, P]) unlink(e P) {
	ln := e.links()
	if ln.prev != nil {
		P(ln.prev).links().next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		P(ln.next).links().prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	ln.prev, ln.next, ln.linked = nil, nil, false
}
