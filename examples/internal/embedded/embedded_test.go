package embedded

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBrokersFromFlagOrEnv(t *testing.T) {
	tests := []struct {
		name, flag, env string
		want            []string
	}{
		{"flag", "a:1,b:2", "", []string{"a:1", "b:2"}},
		{"flag wins over env", "a:1", "e:9", []string{"a:1"}},
		{"env", "", " e:9 , f:9 ,", []string{"e:9", "f:9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", tt.env)
			got, stop, err := Brokers(tt.flag)
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEmbeddedCluster checks that with nothing given, the started cluster
// answers a real client.
func TestEmbeddedCluster(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "")
	addrs, stop, err := Brokers("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping embedded broker at %v: %v", addrs, err)
	}
}
