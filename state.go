package kstreams

// State is the application's lifecycle state, as Kafka Streams' KafkaStreams.State.
type State int

const (
	// Created: New returned, Run not called yet.
	Created State = iota
	// Rebalancing: the group is (re)assigning tasks.
	Rebalancing
	// Running: tasks are processing.
	Running
	// PendingShutdown: Close or a cancelled context is stopping the app.
	PendingShutdown
	// NotRunning: stopped cleanly.
	NotRunning
	// Error: stopped by an error Run returned.
	Error
)

func (s State) String() string {
	switch s {
	case Created:
		return "CREATED"
	case Rebalancing:
		return "REBALANCING"
	case Running:
		return "RUNNING"
	case PendingShutdown:
		return "PENDING_SHUTDOWN"
	case NotRunning:
		return "NOT_RUNNING"
	case Error:
		return "ERROR"
	}
	return "UNKNOWN"
}
