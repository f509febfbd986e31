package state

// loggedStore sends every write of the store it wraps to a ChangeLogger,
// as Kafka Streams' ChangeLoggingKeyValueBytesStore does: the write goes to
// the inner store first, so a failed local write is never logged, and a
// failed log is returned so the task stops before committing.
type loggedStore struct {
	KeyValueStore // reads, Name, Flush and Close delegate
	log           ChangeLogger
}

// loggedRestorer is a loggedStore over an inner Restorer.
type loggedRestorer struct {
	*loggedStore
	r Restorer
}

// NewLogged wraps inner so that every Put, PutIfAbsent that writes, and
// Delete also calls log with the key and the new value (nil for a delete).
// Reads delegate. When inner implements Restorer so does the result, by
// delegation: restoring replays the changelog, so it is never logged
// again.
func NewLogged(inner KeyValueStore, log ChangeLogger) KeyValueStore {
	l := &loggedStore{KeyValueStore: inner, log: log}
	if r, ok := inner.(Restorer); ok {
		return &loggedRestorer{loggedStore: l, r: r}
	}
	return l
}

func (l *loggedStore) inner() KeyValueStore { return l.KeyValueStore }

func (l *loggedStore) Put(key, value []byte) error {
	if err := l.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	return l.log(key, value)
}

// PutIfAbsent logs only when the key was absent, which is when the inner
// store wrote.
func (l *loggedStore) PutIfAbsent(key, value []byte) ([]byte, error) {
	old, err := l.KeyValueStore.PutIfAbsent(key, value)
	if err != nil || old != nil {
		return old, err
	}
	return nil, l.log(key, value)
}

// Delete logs a tombstone even when the key was absent, as Kafka Streams
// does: the local store may be behind the changelog (a standby, a partial
// restore), and a redundant tombstone costs little.
func (l *loggedStore) Delete(key []byte) ([]byte, error) {
	old, err := l.KeyValueStore.Delete(key)
	if err != nil {
		return nil, err
	}
	return old, l.log(key, nil)
}

func (l *loggedRestorer) RestoreBatch(batch []KeyValue) error { return l.r.RestoreBatch(batch) }
