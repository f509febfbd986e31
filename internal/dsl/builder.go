// Package dsl holds the typed handles of the DSL (streams, branches and
// later tables) in one place, so that kstream and ktable can both return
// each other's types without an import cycle: the public packages re-export
// these types with aliases and add the type-changing operators as package
// functions.
package dsl

import (
	"fmt"

	"github.com/kstreams-go/kstreams/internal/topology"
)

// Builder describes a topology through the typed DSL. It is not safe for
// concurrent use.
type Builder struct {
	topo  *topology.Topology
	index int
	err   error
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder { return &Builder{topo: topology.New()} }

// Build returns the described topology, or the first error any DSL call
// met (a duplicate name, a missing serde, ...).
func (b *Builder) Build() (*topology.Topology, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.topo, nil
}

// Topology gives access to the graph under construction (for operators
// defined outside this package).
func (b *Builder) Topology() *topology.Topology { return b.topo }

// NextIndex returns the next index for generated names.
func (b *Builder) NextIndex() int {
	i := b.index
	b.index++
	return i
}

// NewName returns a generated name KSTREAM-<OP>-<10-digit index>, as Kafka
// Streams does. Generated names shift when operators are added before them;
// name operators whose names must stay stable (stores, internal topics).
func (b *Builder) NewName(op string) string {
	return fmt.Sprintf("KSTREAM-%s-%010d", op, b.NextIndex())
}

// NewTableName returns a generated name KTABLE-<OP>-<10-digit index>, the
// prefix Kafka Streams gives table operators.
func (b *Builder) NewTableName(op string) string {
	return fmt.Sprintf("KTABLE-%s-%010d", op, b.NextIndex())
}

// TableNameOr is NameOr for table operators.
func (b *Builder) TableNameOr(given, op string) string {
	gen := b.NewTableName(op)
	if given != "" {
		return given
	}
	return gen
}

// NewStoreName returns a generated store name <prefix>STATE-STORE-<index>,
// as Kafka Streams' newStoreName.
func (b *Builder) NewStoreName(prefix string) string {
	return fmt.Sprintf("%sSTATE-STORE-%010d", prefix, b.NextIndex())
}

// NameOr returns given when it is not empty, else a generated name. The
// index is consumed either way, as in Kafka Streams, so naming one operator
// does not rename the others.
func (b *Builder) NameOr(given, op string) string {
	gen := b.NewName(op)
	if given != "" {
		return given
	}
	return gen
}

// Fail records the first error; later calls keep working on a best-effort
// basis and Build reports the error.
func (b *Builder) Fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

// Err returns the first recorded error.
func (b *Builder) Err() error { return b.err }
