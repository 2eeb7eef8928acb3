package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxtoken/wxtoken/wxtest"
)

// scrape reads url's metrics.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams, string(b)
}

// value is the gauge or counter of family with the given labels.
func value(fams map[string]*dto.MetricFamily, family string, labels ...string) (float64, bool) {
	f := fams[family]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		if m.Gauge != nil {
			return m.Gauge.GetValue(), true
		}
		return m.Counter.GetValue(), true
	}
	return 0, false
}

// TestMetrics: /metrics shows each configured credential on its own and
// a platform's authorizers as one aggregate, counts fetches and reports,
// and holds no token; with metrics.listen it moves to its own listener.
func TestMetrics(t *testing.T) {
	fake := wxtest.New(wxtest.Config{})
	fake.AddComponent(platformComp)
	t.Cleanup(fake.Close)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	m := runYAML(t, platformYAML(t.TempDir(), srv.URL)+
		"  - {name: importer, key: "+importerKey+", allow: [plat, plat/*], import: [plat]}\n")
	addr := m.Addr()
	fake.SetPushTarget(platformComp.AppID, "http://"+addr+"/callback/component/plat", nil)
	getToken(t, addr, "plat")
	const n = 40
	var list []string
	for i := range n {
		appid := fmt.Sprintf("wxauth%04d", i)
		refresh, err := fake.Grant(platformComp.AppID, appid)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, fmt.Sprintf(`{"authorizer_appid":%q,"authorizer_refresh_token":%q}`, appid, refresh))
	}
	if status, body := importCall(t, addr, importerKey, `{"authorizers":[`+strings.Join(list, ",")+`]}`); status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	for i := range n {
		getToken(t, addr, fmt.Sprintf("plat/wxauth%04d", i))
	}
	tok := getToken(t, addr, "plat/wxauth0000").AccessToken
	fake.Expire("wxauth0000")
	invalidate(t, addr, "plat/wxauth0000", tok)

	fams, text := scrape(t, "http://"+addr+"/metrics")
	if v, ok := value(fams, "wxtoken_credential_valid", "credential", "plat", "kind", "component"); !ok || v != 1 {
		t.Errorf("wxtoken_credential_valid of plat = %v, %v; want 1", v, ok)
	}
	if v, ok := value(fams, "wxtoken_credential_expires_in_seconds", "credential", "plat"); !ok || v <= 0 || v > 7200 {
		t.Errorf("plat expires in %v s, want within (0, 7200]", v)
	}
	if v, ok := value(fams, "wxtoken_owned_credentials", "owner", "plat", "kind", "authorizer"); v != n {
		t.Errorf("wxtoken_owned_credentials of plat's authorizers = %v, %v; want %d", v, ok, n)
	}
	if v, ok := value(fams, "wxtoken_owned_invalid", "owner", "plat", "kind", "authorizer"); !ok || v != 0 {
		t.Errorf("wxtoken_owned_invalid = %v, %v; want 0", v, ok)
	}
	if v, ok := value(fams, "wxtoken_owned_min_expires_in_seconds", "owner", "plat", "kind", "authorizer"); !ok || v <= 0 {
		t.Errorf("wxtoken_owned_min_expires_in_seconds = %v, %v; want > 0", v, ok)
	}
	if strings.Contains(text, "wxauth0001") {
		t.Error("an authorizer has series of its own")
	}
	if v, _ := value(fams, "wxtoken_fetches_total", "kind", "authorizer", "result", "ok"); v < n+1 {
		t.Errorf("authorizer fetches counted: %v, want at least %d", v, n+1)
	}
	if v, _ := value(fams, "wxtoken_reports_total", "kind", "authorizer", "result", "refreshed"); v != 1 {
		t.Errorf("reports counted refreshed: %v, want 1", v)
	}
	if _, ok := value(fams, "process_resident_memory_bytes"); !ok {
		t.Error("no process_resident_memory_bytes")
	}
	for _, secret := range []string{tok, platformComp.Secret, getToken(t, addr, "plat").AccessToken} {
		if strings.Contains(text, secret) {
			t.Errorf("the metrics show a token or secret: %.12s…", secret)
		}
	}
}

// TestMetricsListen: with metrics.listen, /metrics is served there and not
// on the API's listener.
func TestMetricsListen(t *testing.T) {
	_, up := upstream(t, wxtest.Config{})
	yaml := strings.Replace(configYAML(t.TempDir(), "127.0.0.1:0", up, time.Minute), "clients:", "metrics: {listen: 127.0.0.1:0}\nclients:", 1)
	yaml = strings.ReplaceAll(yaml, "${WX1_SECRET}", "secret1")
	yaml = strings.ReplaceAll(yaml, "${WX2_SECRET}", "secret2")
	m := runYAML(t, yaml)
	if m.metrics == nil {
		t.Fatal("no metrics listener")
	}
	getToken(t, m.Addr(), "wx1")
	fams, _ := scrape(t, "http://"+m.metrics.addr+"/metrics")
	if v, ok := value(fams, "wxtoken_credential_valid", "credential", "wx1"); !ok || v != 1 {
		t.Errorf("wx1 valid = %v, %v on the metrics listener", v, ok)
	}
	if resp, err := http.Get("http://" + m.Addr() + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /metrics on the API listener: %v %v, want 404", resp.StatusCode, err)
	}
}
