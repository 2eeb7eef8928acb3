// Package deploy holds what operators deploy wxtoken with: the compose
// file, the systemd unit, example configurations, Prometheus alert rules
// and a Grafana dashboard. Its tests check them, and the Dockerfile at the
// repository's root.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// promtool runs promtool, which the Debian package prometheus provides
// (.ci/run installs it). Without it the test is skipped, except in CI.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: .ci/run installs it (Debian package prometheus)")
		}
		t.Skip("promtool not found (Debian package prometheus)")
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = "prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
}

// TestAlertRules: the rules load, and each alert fires on the series its
// unit test gives, with its labels and text, and stays quiet before.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "alerts.yml")
	promtool(t, "test", "rules", "alerts_test.yml")
}

// TestDashboard: the dashboard is JSON with panels that each query
// something; cmd/wxtoken's TestMetrics checks that every metric it names
// is one wxtoken exposes.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/wxtoken.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/wxtoken.json: %v", err)
	}
	if d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard %q has %d panels", d.Title, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q queries nothing", p.Title)
		}
	}
}
