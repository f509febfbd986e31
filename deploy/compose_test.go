package deploy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository, from this package's directory: the compose
// file's directory and the Docker build context.
const root = ".."

// instances are the wordcount services, each published on host port
// 8080+N.
var instances = []string{"wordcount-1", "wordcount-2", "wordcount-3"}

// The parts of a compose file that the checks read. Compose accepts other
// spellings (environment as a list, depends_on as a list, long-form
// ports); decoding into these types fails on those, which is a reason to
// keep the file in the forms the checks understand.
type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       *buildSpec        `yaml:"build"`
	Hostname    string            `yaml:"hostname"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

type buildSpec struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &c)
	return c
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestComposeServices(t *testing.T) {
	c := loadCompose(t)
	want := append([]string{"kafka", "prometheus"}, instances...)
	var got []string
	for name := range c.Services {
		got = append(got, name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}

	for name, prefix := range map[string]string{"kafka": "apache/kafka:", "prometheus": "prom/prometheus:"} {
		img := c.Services[name].Image
		tag, ok := strings.CutPrefix(img, prefix)
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q, want the official %s<pinned version>", name, img, prefix)
		}
		if c.Services[name].Build != nil {
			t.Errorf("%s: has a build section; it runs the official image", name)
		}
	}

	// The three instances run one image, built from the repository's
	// Dockerfile with the repository as the context.
	for _, name := range instances {
		s := c.Services[name]
		if s.Build == nil {
			t.Errorf("%s: no build section; want the repository's Dockerfile", name)
			continue
		}
		df := orDefault(s.Build.Dockerfile, "Dockerfile")
		if path.Clean(s.Build.Context) != "." || df != "Dockerfile" {
			t.Errorf("%s: builds %s in context %q, want Dockerfile in \".\"", name, df, s.Build.Context)
		}
		if s.Image != c.Services[instances[0]].Image {
			t.Errorf("%s: image %q, want %q as %s: the instances run the same build", name, s.Image, c.Services[instances[0]].Image, instances[0])
		}
	}
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// listener is one entry of a Kafka listener list, NAME://host:port.
type listener struct{ name, host, port string }

func parseListeners(t *testing.T, key, v string) map[string]listener {
	t.Helper()
	out := map[string]listener{}
	for _, item := range strings.Split(v, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "://")
		host, port, err := splitHostPort(addr)
		if !ok || err != nil {
			t.Fatalf("kafka: %s: %q is not NAME://host:port", key, item)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("kafka: %s: listener %s twice", key, name)
		}
		out[name] = listener{name, host, port}
	}
	return out
}

// splitHostPort is net.SplitHostPort, but wants a port.
func splitHostPort(addr string) (host, port string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 || i == len(addr)-1 {
		return "", "", fmt.Errorf("%q has no port", addr)
	}
	if _, err := strconv.ParseUint(addr[i+1:], 10, 16); err != nil {
		return "", "", fmt.Errorf("%q: port: %w", addr, err)
	}
	return addr[:i], addr[i+1:], nil
}

// portMapping is a short-syntax published port, [IP:]HOST:CONTAINER.
type portMapping struct{ host, container string }

func parsePorts(t *testing.T, svc string, ports []string) []portMapping {
	t.Helper()
	var out []portMapping
	for _, p := range ports {
		p = strings.TrimSuffix(p, "/tcp")
		parts := strings.Split(p, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Fatalf("%s: port %q is not [IP:]HOST:CONTAINER", svc, p)
		}
		out = append(out, portMapping{parts[len(parts)-2], parts[len(parts)-1]})
	}
	return out
}

// kafkaInternal checks the Kafka service's KRaft settings and listeners
// and returns the address the other containers reach it at: the host and
// port its listener for them advertises.
func kafkaInternal(t *testing.T, c composeFile) string {
	t.Helper()
	k := c.Services["kafka"]
	env := k.Environment
	get := func(key string) string {
		t.Helper()
		v, ok := env[key]
		if !ok || v == "" {
			t.Fatalf("kafka: environment has no %s", key)
		}
		return v
	}
	// The name other containers resolve it by: the service name (and
	// its hostname, if set, so the node's own address resolves locally).
	self := "kafka"
	if k.Hostname != "" && k.Hostname != self {
		t.Errorf("kafka: hostname %q, want the service name %q", k.Hostname, self)
	}

	// KRaft: one node that is broker and controller, and the quorum of
	// controllers is that node at its controller listener.
	roles := strings.Split(get("KAFKA_PROCESS_ROLES"), ",")
	for i := range roles {
		roles[i] = strings.TrimSpace(roles[i])
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"broker", "controller"}) {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %q, want broker,controller (KRaft, combined mode)", env["KAFKA_PROCESS_ROLES"])
	}
	listeners := parseListeners(t, "KAFKA_LISTENERS", get("KAFKA_LISTENERS"))
	advertised := parseListeners(t, "KAFKA_ADVERTISED_LISTENERS", get("KAFKA_ADVERTISED_LISTENERS"))
	controller := get("KAFKA_CONTROLLER_LISTENER_NAMES")
	cl, ok := listeners[controller]
	if !ok {
		t.Fatalf("kafka: controller listener %s is not in KAFKA_LISTENERS %q", controller, env["KAFKA_LISTENERS"])
	}
	if _, ok := advertised[controller]; ok {
		t.Errorf("kafka: the controller listener %s is advertised to clients", controller)
	}
	nodeID := get("KAFKA_NODE_ID")
	if want := nodeID + "@" + self + ":" + cl.port; get("KAFKA_CONTROLLER_QUORUM_VOTERS") != want {
		t.Errorf("kafka: KAFKA_CONTROLLER_QUORUM_VOTERS %q, want %q: this node at its controller listener", env["KAFKA_CONTROLLER_QUORUM_VOTERS"], want)
	}
	// The storage is formatted with CLUSTER_ID on the first start; Kafka
	// takes only a UUID in its base64url form.
	if id, err := base64.RawURLEncoding.DecodeString(get("CLUSTER_ID")); err != nil || len(id) != 16 {
		t.Errorf("kafka: CLUSTER_ID %q is not 16 bytes in unpadded base64url (kafka-storage.sh random-uuid)", env["CLUSTER_ID"])
	}

	protocols := map[string]bool{}
	for _, m := range strings.Split(get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"), ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(m), ":")
		protocols[name] = true
	}
	for name := range listeners {
		if !protocols[name] {
			t.Errorf("kafka: listener %s has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", name)
		}
	}
	if ib := get("KAFKA_INTER_BROKER_LISTENER_NAME"); advertised[ib] == (listener{}) {
		t.Errorf("kafka: inter-broker listener %s is not advertised", ib)
	}

	// Every advertised listener must be reachable where its clients are:
	// at the service name on the listener's own port, inside the network;
	// at localhost on a published port, from the host.
	published := map[string]string{} // host port -> container port
	for _, p := range parsePorts(t, "kafka", k.Ports) {
		published[p.host] = p.container
	}
	internal := ""
	for name, a := range advertised {
		l, ok := listeners[name]
		switch {
		case !ok:
			t.Errorf("kafka: advertised listener %s is not in KAFKA_LISTENERS", name)
		case a.host == self:
			if a.port != l.port {
				t.Errorf("kafka: listener %s advertises port %s but listens on %s", name, a.port, l.port)
			}
			internal = a.host + ":" + a.port
		case a.host == "localhost" || a.host == "127.0.0.1":
			if published[a.port] != l.port {
				t.Errorf("kafka: listener %s advertises %s:%s to the host, but host port %s is not published to its port %s (ports %q)",
					name, a.host, a.port, a.port, l.port, k.Ports)
			}
		default:
			t.Errorf("kafka: listener %s advertises %s, which neither the containers nor the host resolve", name, a.host)
		}
	}
	if internal == "" {
		t.Fatalf("kafka: no advertised listener at %s:PORT for the other containers (KAFKA_ADVERTISED_LISTENERS %q)", self, env["KAFKA_ADVERTISED_LISTENERS"])
	}

	// One broker: the internal topics must ask for one replica, or Kafka
	// cannot create __consumer_offsets (no consumer group works) nor
	// __transaction_state (no -eos).
	for _, key := range []string{
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
	} {
		if env[key] != "1" {
			t.Errorf("kafka: %s is %q, want 1 on a one-broker cluster", key, env[key])
		}
	}

	// The instances wait for Kafka's health, so the check must be there
	// and must ask the address they use.
	if k.Healthcheck == nil || !slices.Contains(k.Healthcheck.Test, internal) {
		t.Errorf("kafka: healthcheck %v does not ask the broker at %s", k.Healthcheck, internal)
	}
	if dirs := get("KAFKA_LOG_DIRS"); !slices.Contains(namedVolumeTargets(t, c, "kafka"), dirs) {
		t.Errorf("kafka: KAFKA_LOG_DIRS %s is not on a named volume (volumes %q)", dirs, k.Volumes)
	}
	return internal
}

func TestKafkaKRaft(t *testing.T) {
	if got := kafkaInternal(t, loadCompose(t)); got != "kafka:9092" {
		t.Errorf("containers reach Kafka at %s, want kafka:9092", got)
	}
}

// namedVolumeTargets returns where svc mounts named volumes, checking that
// each is declared at the top level.
func namedVolumeTargets(t *testing.T, c composeFile, svc string) []string {
	t.Helper()
	var out []string
	for _, v := range c.Services[svc].Volumes {
		src, target, _ := strings.Cut(v, ":")
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			continue // a bind mount
		}
		if _, ok := c.Volumes[src]; !ok {
			t.Errorf("%s: volume %s is not declared under the top-level volumes", svc, src)
		}
		target, _, _ = strings.Cut(target, ":")
		out = append(out, target)
	}
	return out
}

// flagSpec is a wordcount flag: its name, and whether it is a bool (takes
// no separate value).
type flagSpec map[string]bool

// wordcountHelp is what examples/wordcount -h prints, built once for all
// the tests that read it.
var wordcountHelp = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "compose-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "wordcount")
	build := exec.Command("go", "build", "-o", bin, "./examples/wordcount")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./examples/wordcount: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wordcount -h: %v\n%s", err, out)
	}
	return out, nil
})

// wordcountFlags reads examples/wordcount's flags from its -h, so a flag
// renamed or removed there fails here rather than in a container.
func wordcountFlags(t *testing.T) flagSpec {
	t.Helper()
	out, err := wordcountHelp()
	if err != nil {
		t.Fatal(err)
	}
	// flag.PrintDefaults: "  -name type" or, for a bool, "  -name"; the
	// usage follows on the next line, or after a tab.
	flags := flagSpec{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "  -")
		if !ok {
			continue
		}
		line, _, _ = strings.Cut(line, "\t")
		f := strings.Fields(line)
		flags[f[0]] = len(f) == 1
	}
	if !flags["eos"] || flags["brokers"] || len(flags) < 5 {
		t.Fatalf("wordcount -h: read flags %v, which is not what it lists:\n%s", flags, out)
	}
	return flags
}

// parseCommand parses args as wordcount's flag package would, returning
// each flag's value.
func parseCommand(t *testing.T, svc string, spec flagSpec, args []string) map[string]string {
	t.Helper()
	vals := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Fatalf("%s: command argument %q is not a flag; wordcount takes no arguments", svc, a)
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		isBool, known := spec[name]
		switch {
		case !known:
			t.Fatalf("%s: command flag -%s is not one of wordcount's (%v)", svc, name, spec)
		case isBool && !hasVal:
			val = "true"
		case !hasVal:
			if i+1 == len(args) {
				t.Fatalf("%s: command flag -%s has no value", svc, name)
			}
			i++
			val = args[i]
		}
		vals[name] = val
	}
	return vals
}

func TestWordcountInstances(t *testing.T) {
	c := loadCompose(t)
	brokers := kafkaInternal(t, c)
	spec := wordcountFlags(t)
	hostPorts := map[string]string{}
	volumes := map[string]string{}
	for i, name := range instances {
		s := c.Services[name]
		flags := parseCommand(t, name, spec, s.Command)
		if flags["brokers"] != brokers {
			t.Errorf("%s: -brokers %q, want Kafka's listener for the containers, %s", name, flags["brokers"], brokers)
		}

		// -http is where the instance listens and what it advertises to
		// the others, who forward queries there: it must be the service
		// name, which resolves to this container in the network, with the
		// port that is published.
		host, port, err := splitHostPort(flags["http"])
		if err != nil || host != name {
			t.Errorf("%s: -http %q, want %s:PORT: the address the other instances reach it at", name, flags["http"], name)
		}
		if s.Hostname != "" && s.Hostname != name {
			t.Errorf("%s: hostname %q, want the service name", name, s.Hostname)
		}
		wantHost := strconv.Itoa(8081 + i)
		ports := parsePorts(t, name, s.Ports)
		if len(ports) != 1 || ports[0].container != port || ports[0].host != wantHost {
			t.Errorf("%s: ports %q, want %q: host port %s to the -http port", name, s.Ports, wantHost+":"+port, wantHost)
		}
		if other, dup := hostPorts[port]; dup && port != "" {
			// Not wrong in itself (each container has its own address),
			// but then the advertised addresses would not work from the
			// host with the three names mapped to 127.0.0.1.
			t.Errorf("%s: -http port %s is %s's too", name, port, other)
		}
		hostPorts[port] = name

		if flags["standbys"] != "1" {
			t.Errorf("%s: -standbys %q, want 1", name, flags["standbys"])
		}
		dir := flags["state-dir"]
		if !slices.Contains(namedVolumeTargets(t, c, name), dir) || dir == "" {
			t.Errorf("%s: -state-dir %q is not on a named volume (volumes %q)", name, dir, s.Volumes)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if other, dup := volumes[src]; dup {
				t.Errorf("%s: volume %s is %s's too: each instance has its own state", name, src, other)
			}
			volumes[src] = name
		}
		if dir != runtimeWorkdir(t) {
			t.Errorf("%s: -state-dir %q is not the image's WORKDIR %q, the one directory the image makes writable for its user",
				name, dir, runtimeWorkdir(t))
		}
		if d, ok := s.DependsOn["kafka"]; !ok || d.Condition != "service_healthy" {
			t.Errorf("%s: depends_on %v, want kafka with condition service_healthy", name, s.DependsOn)
		}
	}
}

func TestPrometheusTargets(t *testing.T) {
	c := loadCompose(t)
	p := c.Services["prometheus"]
	if ports := parsePorts(t, "prometheus", p.Ports); len(ports) != 1 || ports[0] != (portMapping{"9090", "9090"}) {
		t.Errorf("prometheus: ports %q, want 9090:9090", p.Ports)
	}
	const configPath = "/etc/prometheus/prometheus.yml" // the image's default
	config := ""
	for _, v := range p.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == configPath {
			config = parts[0]
		}
	}
	if config == "" {
		t.Fatalf("prometheus: nothing mounted at %s (volumes %q)", configPath, p.Volumes)
	}
	if filepath.Clean(config) != "deploy/prometheus.yml" {
		t.Errorf("prometheus: config mounted from %s, want ./deploy/prometheus.yml", config)
	}

	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Scheme        string `yaml:"scheme"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(root, config), &pc)
	var targets []string
	for _, sc := range pc.ScrapeConfigs {
		if mp := orDefault(sc.MetricsPath, "/metrics"); mp != "/metrics" {
			t.Errorf("%s: job %s scrapes %s, want /metrics", config, sc.JobName, mp)
		}
		if s := orDefault(sc.Scheme, "http"); s != "http" {
			t.Errorf("%s: job %s scrapes over %s, want http", config, sc.JobName, s)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	spec := wordcountFlags(t)
	var want []string
	for _, name := range instances {
		want = append(want, parseCommand(t, name, spec, c.Services[name].Command)["http"])
	}
	slices.Sort(targets)
	slices.Sort(want)
	if !slices.Equal(targets, want) {
		t.Errorf("%s: scrape targets %q, want the instances' -http addresses %q", config, targets, want)
	}
	for _, name := range instances {
		if _, ok := p.DependsOn[name]; !ok {
			t.Errorf("prometheus: does not depend on %s", name)
		}
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
	line int
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && cur.Len() == 0 {
			continue // a comment (or parser directive), or a blank line
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	return out
}

// stage is one FROM of the Dockerfile and what follows it.
type stage struct {
	image, name string
	body        []instruction
}

func dockerStages(t *testing.T) []stage {
	t.Helper()
	var stages []stage
	for _, in := range readDockerfile(t) {
		if in.cmd == "FROM" {
			f := slices.DeleteFunc(strings.Fields(in.args), func(s string) bool { return strings.HasPrefix(s, "--") })
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// shellFields splits a shell command line into words, honouring quotes.
func shellFields(s string) []string {
	var out []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// goModVersion is go.mod's go directive.
func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// majorMinor is "1.26" of "1.26.0", "1.26rc1" or "1.26".
func majorMinor(v string) string {
	major, rest, _ := strings.Cut(v, ".")
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	return major + "." + rest[:end]
}

func TestDockerfile(t *testing.T) {
	stages := dockerStages(t)
	build, runtime := stages[0], stages[len(stages)-1]

	// The build stage: the official Go image at go.mod's version.
	tag, ok := strings.CutPrefix(build.image, "golang:")
	if !ok {
		t.Fatalf("Dockerfile: build stage FROM %s, want golang:<go.mod's version>", build.image)
	}
	version, _, _ := strings.Cut(tag, "-") // 1.26-bookworm
	if mod := goModVersion(t); majorMinor(version) != majorMinor(mod) {
		t.Errorf("Dockerfile: FROM %s, but go.mod says go %s", build.image, mod)
	}
	if build.name == "" {
		t.Fatalf("Dockerfile: build stage FROM %s has no name (AS build) for the runtime stage to copy from", build.image)
	}

	// It only runs go commands, and one of them builds examples/wordcount.
	binary := ""
	for _, in := range build.body {
		if in.cmd != "RUN" {
			continue
		}
		words := shellFields(in.args)
		for len(words) > 0 && strings.HasPrefix(words[0], "--") {
			words = words[1:] // --mount=...
		}
		for _, cmd := range splitCommands(words) {
			for len(cmd) > 0 && strings.Contains(cmd[0], "=") {
				cmd = cmd[1:] // CGO_ENABLED=0 and the like
			}
			if len(cmd) < 2 || cmd[0] != "go" {
				t.Errorf("Dockerfile:%d: the build stage runs %q; want only go commands", in.line, cmd)
				continue
			}
			if cmd[1] != "build" || !slices.Contains(cmd, "./examples/wordcount") {
				continue
			}
			if i := slices.Index(cmd, "-o"); i >= 0 && i+1 < len(cmd) {
				binary = cmd[i+1]
			}
		}
	}
	if binary == "" {
		t.Fatal("Dockerfile: no `go build -o FILE ./examples/wordcount` in the build stage")
	}

	// The runtime stage: a small base, the built binary, a non-root user.
	if !strings.HasPrefix(runtime.image, "gcr.io/distroless/") && !strings.Contains(runtime.image, "-slim") {
		t.Errorf("Dockerfile: runtime stage FROM %s, want distroless or a -slim image", runtime.image)
	}
	installed, user := "", ""
	var entrypoint []string
	for _, in := range runtime.body {
		switch in.cmd {
		case "COPY":
			f := shellFields(in.args)
			if slices.Contains(f, "--from="+build.name) && slices.Contains(f, binary) {
				installed = f[len(f)-1]
			}
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("Dockerfile:%d: ENTRYPOINT %s is not the exec (JSON) form, so signals would go to a shell: %v", in.line, in.args, err)
			}
		}
	}
	if installed == "" {
		t.Fatalf("Dockerfile: the runtime stage does not COPY --from=%s %s", build.name, binary)
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("Dockerfile: the runtime stage runs as %q, want a non-root USER", user)
	}
	if len(entrypoint) == 0 || entrypoint[0] != installed {
		t.Errorf("Dockerfile: ENTRYPOINT %q, want the binary copied to %s", entrypoint, installed)
	}
}

// splitCommands splits shell words at && and ;.
func splitCommands(words []string) [][]string {
	var out [][]string
	var cur []string
	for _, w := range words {
		if w == "&&" || w == ";" {
			out, cur = append(out, cur), nil
			continue
		}
		cur = append(cur, w)
	}
	return append(out, cur)
}

// runtimeWorkdir is the runtime stage's WORKDIR, which the checks expect
// to be set after its USER: BuildKit then creates it owned by that user,
// and a named volume mounted on it starts out owned by that user too,
// which is what lets the non-root instance write its state there.
func runtimeWorkdir(t *testing.T) string {
	t.Helper()
	stages := dockerStages(t)
	workdir, userSet := "", false
	for _, in := range stages[len(stages)-1].body {
		switch in.cmd {
		case "USER":
			userSet = true
		case "WORKDIR":
			if !userSet {
				t.Errorf("Dockerfile:%d: WORKDIR %s before USER: it would be created owned by root", in.line, in.args)
			}
			workdir = in.args
		}
	}
	return workdir
}

// TestDockerContext checks that .dockerignore leaves in the build context
// everything the Dockerfile copies and go build reads: go.mod, go.sum and
// every file of the module's packages that examples/wordcount is built
// from.
func TestDockerContext(t *testing.T) {
	ignore := readDockerignore(t)
	needed := []string{"go.mod", "go.sum"}
	for _, in := range readDockerfile(t) {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		f := shellFields(in.args)
		if slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, "--from=") }) {
			continue
		}
		for _, src := range f[:len(f)-1] {
			if !strings.HasPrefix(src, "--") && path.Clean(src) != "." {
				needed = append(needed, path.Clean(src))
			}
		}
	}

	list := exec.Command("go", "list", "-deps", "-json", "./examples/wordcount")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps ./examples/wordcount: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir    string
			Module *struct{ Main bool }
			GoFiles, CgoFiles, SFiles, HFiles,
			EmbedFiles, SysoFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue // the standard library, or a module go mod download fetches
		}
		for _, files := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.HFiles, p.EmbedFiles, p.SysoFiles} {
			for _, f := range files {
				rel, err := filepath.Rel(abs, filepath.Join(p.Dir, f))
				if err != nil {
					t.Fatal(err)
				}
				needed = append(needed, filepath.ToSlash(rel))
			}
		}
	}
	slices.Sort(needed)
	needed = slices.Compact(needed)
	if !slices.Contains(needed, "examples/wordcount/main.go") {
		t.Fatalf("go list found no examples/wordcount/main.go among %q", needed)
	}
	for _, f := range needed {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the build needs %s: %v", f, err)
		}
		if pat := ignore.excludes(f); pat != "" {
			t.Errorf(".dockerignore pattern %q leaves %s out of the build context, and the image build needs it", pat, f)
		}
	}
}

// dockerignore is a parsed .dockerignore, matched as Docker matches it:
// patterns are relative to the context root, * and ? stay within a path
// element, ** crosses elements, a pattern matching a directory excludes
// everything under it, ! re-includes, and the last matching line wins.
type dockerignore []ignorePattern

type ignorePattern struct {
	text    string
	re      *regexp.Regexp
	include bool // a ! line
}

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{text: line}
		if s, ok := strings.CutPrefix(line, "!"); ok {
			p.include, line = true, strings.TrimSpace(s)
		}
		line = strings.TrimPrefix(path.Clean(line), "/")
		if strings.ContainsAny(line, "[\\") {
			t.Fatalf(".dockerignore: %q: this test's matcher knows *, ? and ** only", p.text)
		}
		p.re = regexp.MustCompile("^" + globRegexp(line) + "$")
		d = append(d, p)
	}
	return d
}

// globRegexp translates a .dockerignore pattern into a regular expression.
func globRegexp(p string) string {
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			sb.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			sb.WriteString(".*")
			i++
		case p[i] == '*':
			sb.WriteString("[^/]*")
		case p[i] == '?':
			sb.WriteString("[^/]")
		default:
			sb.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	return sb.String()
}

// excludes returns the pattern that leaves file (slash-separated, relative
// to the context) out of the context, or "" if it is in.
func (d dockerignore) excludes(file string) string {
	by := ""
	for _, p := range d {
		// A pattern matches the file or any directory above it.
		match := p.re.MatchString(file)
		for dir := path.Dir(file); !match && dir != "."; dir = path.Dir(dir) {
			match = p.re.MatchString(dir)
		}
		if !match {
			continue
		}
		if p.include {
			by = ""
		} else {
			by = p.text
		}
	}
	return by
}

// TestDockerignoreMatcher checks the matcher the context check relies on.
func TestDockerignoreMatcher(t *testing.T) {
	d := dockerignore{}
	for _, line := range []string{"/wordcount", "**/*.test", "deploy", "docs/*.md", "!docs/keep.md"} {
		p := ignorePattern{text: line}
		if s, ok := strings.CutPrefix(line, "!"); ok {
			p.include, line = true, s
		}
		p.re = regexp.MustCompile("^" + globRegexp(strings.TrimPrefix(path.Clean(line), "/")) + "$")
		d = append(d, p)
	}
	for file, want := range map[string]string{
		"wordcount":                  "/wordcount",
		"examples/wordcount/main.go": "",
		"kstream.test":               "**/*.test",
		"a/b/state.test":             "**/*.test",
		"deploy/prometheus.yml":      "deploy",
		"deployment.go":              "",
		"docs/a.md":                  "docs/*.md",
		"docs/sub/a.md":              "",
		"docs/keep.md":               "",
		"go.mod":                     "",
	} {
		if got := d.excludes(file); got != want {
			t.Errorf("excludes(%q) = %q, want %q", file, got, want)
		}
	}
}
