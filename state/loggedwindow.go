package state

// Logging layers for window and session stores, as Kafka Streams'
// ChangeLoggingWindowBytesStore and ChangeLoggingSessionBytesStore: the
// write goes to the inner store first, and then to the ChangeLogger under
// the changelog key layout (WindowKey, SessionKey). The key passed to the
// logger is a fresh slice it may keep.
//
// Unlike Kafka, a write the inner store skipped (an expired window or
// session, a delete in a store of duplicates) is not logged: a restore
// would skip it too, and the changelog then holds only what the store
// holds. Over a store of this package the sequence number logged is the one
// the inner store used; over another store it is 0.

type loggedWindow struct {
	WindowStore // reads, Name, Flush and Close delegate
	log         ChangeLogger
}

type loggedWindowRestorer struct {
	*loggedWindow
	r Restorer
}

// NewLoggedWindow wraps inner so that every Put also calls log with
// WindowKey(key, start, seq) and the value (nil for a delete). When inner
// implements Restorer so does the result, by delegation: restoring is
// never logged.
func NewLoggedWindow(inner WindowStore, log ChangeLogger) WindowStore {
	l := &loggedWindow{WindowStore: inner, log: log}
	if r, ok := inner.(Restorer); ok {
		return &loggedWindowRestorer{loggedWindow: l, r: r}
	}
	return l
}

func (l *loggedWindow) innerWindow() WindowStore { return l.WindowStore }

func (l *loggedWindow) Put(key, value []byte, start int64) error {
	p, ok := l.WindowStore.(windowPutter)
	if !ok {
		if err := l.WindowStore.Put(key, value, start); err != nil {
			return err
		}
		return l.log(WindowKey(key, start, 0), value)
	}
	seq, written, err := p.put(key, value, start)
	if err != nil || !written {
		return err
	}
	return l.log(WindowKey(key, start, seq), value)
}

func (l *loggedWindowRestorer) RestoreBatch(batch []KeyValue) error { return l.r.RestoreBatch(batch) }

type loggedSession struct {
	SessionStore // reads, Name, Flush and Close delegate
	log          ChangeLogger
}

type loggedSessionRestorer struct {
	*loggedSession
	r Restorer
}

// NewLoggedSession wraps inner so that every Put and Remove also calls log
// with SessionKey(key, start, end) and the value (nil for a removal). When
// inner implements Restorer so does the result, by delegation.
func NewLoggedSession(inner SessionStore, log ChangeLogger) SessionStore {
	l := &loggedSession{SessionStore: inner, log: log}
	if r, ok := inner.(Restorer); ok {
		return &loggedSessionRestorer{loggedSession: l, r: r}
	}
	return l
}

func (l *loggedSession) innerSession() SessionStore { return l.SessionStore }

func (l *loggedSession) Put(key []byte, start, end int64, value []byte) error {
	p, ok := l.SessionStore.(sessionPutter)
	if !ok {
		if err := l.SessionStore.Put(key, start, end, value); err != nil {
			return err
		}
		return l.log(SessionKey(key, start, end), value)
	}
	written, err := p.put(key, start, end, value)
	if err != nil || !written {
		return err
	}
	return l.log(SessionKey(key, start, end), value)
}

// Remove logs a tombstone even when the session was absent, as Delete of
// a key-value store does; not when it had expired.
func (l *loggedSession) Remove(key []byte, start, end int64) error {
	return l.Put(key, start, end, nil)
}

func (l *loggedSessionRestorer) RestoreBatch(batch []KeyValue) error { return l.r.RestoreBatch(batch) }

// InnerWindow unwraps one layer of a window store: the store a logging
// layer writes to, or nil when s is an inner store or not of this package.
// The runtime walks down with it to reach the Restorer and Clearer.
func InnerWindow(s WindowStore) WindowStore {
	if w, ok := s.(interface{ innerWindow() WindowStore }); ok {
		return w.innerWindow()
	}
	return nil
}

// InnerSession is InnerWindow for session stores.
func InnerSession(s SessionStore) SessionStore {
	if w, ok := s.(interface{ innerSession() SessionStore }); ok {
		return w.innerSession()
	}
	return nil
}
