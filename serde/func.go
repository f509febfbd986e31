package serde

// Func returns a serde built from a serialize and a deserialize function,
// for formats that need no state of their own. Both functions are called
// as they are, tombstones included: de sees a nil slice when the record
// has a null value.
func Func[T any](ser func(topic string, v T) ([]byte, error), de func(topic string, b []byte) (T, error)) Serde[T] {
	return funcSerde[T]{ser: ser, de: de}
}

type funcSerde[T any] struct {
	ser func(string, T) ([]byte, error)
	de  func(string, []byte) (T, error)
}

func (f funcSerde[T]) Serialize(topic string, v T) ([]byte, error)   { return f.ser(topic, v) }
func (f funcSerde[T]) Deserialize(topic string, b []byte) (T, error) { return f.de(topic, b) }
