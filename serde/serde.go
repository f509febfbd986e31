// Package serde turns typed keys and values into the bytes that travel on Kafka
// topics and back. The built-in serdes use the same wire formats as Kafka's
// Java serdes, so topics written by kstreams read the same in any client.
//
// A nil byte slice is a tombstone (Kafka's null value). Deserializing nil gives
// the zero value of T and no error; callers that must tell a tombstone from a
// zero value look at the bytes before deserializing.
package serde

// Serializer turns a value into bytes for the given topic.
type Serializer[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
}

// Deserializer turns bytes read from the given topic into a value.
type Deserializer[T any] interface {
	Deserialize(topic string, b []byte) (T, error)
}

// Serde is a Serializer and a Deserializer for the same type.
type Serde[T any] interface {
	Serializer[T]
	Deserializer[T]
}
