package deploy

import (
	"crypto/sha256"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeService is what the test reads of a service in compose.yaml.
type composeService struct {
	Image string
	Build struct {
		Context    string
		Dockerfile string
	}
	Command     []string
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	Environment map[string]string
	Volumes     []string
	Ports       []string
	Healthcheck struct{ Test []string }
}

// fromEnv matches a compose value taken from the environment: ${NAME}, or
// ${NAME:?message}, which stops compose when NAME is not set.
var fromEnv = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)(:\?[^}]*)?\}$`)

// exampleValue stands for the value of the variable name: 43 characters of
// unpadded base64, which passes for an AppSecret, a client key and a
// master key's shape alike; each name its own.
func exampleValue(name string) string {
	sum := sha256.Sum256([]byte("example " + name))
	return base64.RawStdEncoding.EncodeToString(sum[:])
}

// TestCompose checks compose.yaml's promises: a Redis that keeps an
// append-only file fsynced every second; two wxtoken instances built from
// the Dockerfile that wait for it and check their health on /readyz, each
// on its own host port, with the master key from the environment; and
// the configuration each mounts exists, passes check-config with just the
// environment compose gives it, and points at the Redis service.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Services map[string]composeService }
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var redis string
	var instances []string
	for name, s := range c.Services {
		switch {
		case strings.HasPrefix(s.Image, "redis:"):
			redis = name
		case s.Build.Context != "":
			instances = append(instances, name)
		}
	}
	slices.Sort(instances)
	if redis == "" || len(instances) != 2 {
		t.Fatalf("redis service %q, wxtoken services %q; want one Redis and two wxtoken", redis, instances)
	}
	rs := c.Services[redis]
	cmd := strings.Join(rs.Command, " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync everysec"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q: want %s", cmd, want)
		}
	}
	if len(rs.Healthcheck.Test) == 0 {
		t.Error("redis has no healthcheck, so the instances cannot wait for it")
	}

	bin := staticBinary(t)
	ports := map[string]bool{}
	for _, name := range instances {
		s := c.Services[name]
		if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: build %+v: %v", name, s.Build, err)
		}
		if s.DependsOn[redis].Condition != "service_healthy" {
			t.Errorf("%s: depends_on %v; want %s with condition service_healthy", name, s.DependsOn, redis)
		}
		if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, "/readyz") {
			t.Errorf("%s: healthcheck %q; want /readyz", name, hc)
		}
		if m := fromEnv.FindStringSubmatch(s.Environment["WXTOKEN_MASTER_KEY"]); m == nil || m[1] != "WXTOKEN_MASTER_KEY" {
			t.Errorf("%s: WXTOKEN_MASTER_KEY = %q; want it passed from the environment", name, s.Environment["WXTOKEN_MASTER_KEY"])
		}
		for _, p := range s.Ports {
			host := strings.TrimSuffix(p, ":8750")
			if host == p || ports[host] {
				t.Errorf("%s: port %q; want the container's 8750 on a host port of its own", name, p)
			}
			ports[host] = true
		}

		i := slices.Index(s.Command, "--config")
		if i < 0 || i+1 >= len(s.Command) {
			t.Fatalf("%s: command %q has no --config", name, s.Command)
		}
		var src string
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == s.Command[i+1] {
				src = parts[0]
			}
		}
		if src == "" {
			t.Fatalf("%s: no volume mounts its configuration %s", name, s.Command[i+1])
		}
		env := []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range s.Environment {
			if m := fromEnv.FindStringSubmatch(v); m != nil {
				v = exampleValue(m[1])
			}
			env = append(env, k+"="+v)
		}
		check := exec.Command(bin, "check-config", "--config", src)
		check.Env = env
		if out, err := check.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
			t.Errorf("%s: wxtoken check-config --config %s with compose's environment: %v\n%s", name, src, err, out)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Listen string
			Store  struct {
				Type  string
				Addrs []string
			}
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Store.Type != "redis" || len(cfg.Store.Addrs) != 1 {
			t.Errorf("%s: %s: store %+v; want type redis and the one Redis", name, src, cfg.Store)
		} else if host, _, _ := net.SplitHostPort(cfg.Store.Addrs[0]); host != redis {
			t.Errorf("%s: %s: store.addrs %q; want the service %s", name, src, cfg.Store.Addrs, redis)
		}
		if host, port, _ := net.SplitHostPort(cfg.Listen); host != "0.0.0.0" || port != "8750" {
			t.Errorf("%s: %s: listen %q; want 0.0.0.0:8750, the published port on every address", name, src, cfg.Listen)
		}
	}
}
