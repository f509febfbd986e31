// Package state holds the state stores processors read and write: key-value,
// timestamped, window and session stores, on Pebble or in memory, each
// backed by a changelog topic. Stores arrive with the state work; today the
// package only fixes the name under which they will be found.
package state
