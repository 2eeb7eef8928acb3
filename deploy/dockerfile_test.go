package deploy

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// An instruction is one Dockerfile instruction: its keyword, upper-cased,
// and the rest of its line(s).
type instruction struct {
	Cmd, Args string
	Line      int
}

// A stage is the instructions from one FROM to the next.
type stage struct {
	From string // the FROM line's arguments
	Name string // its AS name, if any
	Body []instruction
}

// parseDockerfile splits a Dockerfile into stages, joining continued lines
// and dropping comments, as docker build reads it.
func parseDockerfile(data string) (stages []stage, err error) {
	var cur strings.Builder
	start := 0
	flush := func(line int) error {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: line}
		if in.Cmd == "FROM" {
			from, name, _ := strings.Cut(in.Args, " AS ")
			if !strings.Contains(in.Args, " AS ") {
				from, name, _ = strings.Cut(in.Args, " as ")
			}
			stages = append(stages, stage{From: strings.TrimSpace(from), Name: strings.TrimSpace(name)})
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" { // an ARG before the first FROM names the base images
				return nil
			}
			return fmt.Errorf("line %d: %s before FROM", line, in.Cmd)
		}
		stages[len(stages)-1].Body = append(stages[len(stages)-1].Body, in)
		return nil
	}
	for i, line := range strings.Split(data, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 {
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			start = i + 1
		} else if strings.HasPrefix(t, "#") {
			continue // a comment inside a continued instruction
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`) + " ")
			continue
		}
		cur.WriteString(t)
		if err := flush(start); err != nil {
			return nil, err
		}
	}
	if err := flush(start); err != nil {
		return nil, err
	}
	return stages, nil
}

// find returns the stage's instructions of kind cmd.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm reads an instruction's JSON-array form, which runs without a
// shell (the final image has none).
func execForm(t *testing.T, in instruction, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("line %d: %s %s: want the exec form, a JSON array (the image has no shell): %v", in.Line, in.Cmd, args, err)
	}
	return argv
}

// shellWords splits a shell command line on blanks, honouring double and
// single quotes, which is all the Dockerfile's go build line uses.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case strings.ContainsRune(";&|<>`", r):
			return nil, fmt.Errorf("%q: more than one command", s)
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return stages
}

// goBuild is the Dockerfile's go build: the variables set before it and
// its arguments, with the build stage it runs in.
func goBuild(t *testing.T, stages []stage) (env, args []string, build stage) {
	t.Helper()
	for _, s := range stages {
		for _, in := range s.find("RUN") {
			if !strings.Contains(in.Args, "go build") {
				continue
			}
			words, err := shellWords(in.Args)
			if err != nil {
				t.Fatalf("line %d: %v", in.Line, err)
			}
			for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
				env, words = append(env, words[0]), words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("line %d: RUN %s: want [VAR=value ...] go build ...", in.Line, in.Args)
			}
			return env, words[2:], s
		}
	}
	t.Fatal("Dockerfile: no RUN go build")
	return nil, nil, stage{}
}

var (
	staticOnce sync.Once
	staticBin  string
	staticErr  error
)

// testVersion is the VERSION the tests build with, to see it reported.
const testVersion = "9.8.7-dockerfile-test"

// staticBinary builds wxtoken as the Dockerfile does, with its variables
// and flags, VERSION set to testVersion, into a directory removed when the
// tests end; once for all the tests that need it.
func staticBinary(t *testing.T) string {
	t.Helper()
	staticOnce.Do(func() {
		env, args, _ := goBuild(t, readDockerfile(t))
		dir, err := os.MkdirTemp("", "wxtoken-static")
		if err != nil {
			staticErr = err
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		staticBin = filepath.Join(dir, "wxtoken")
		// The build arguments docker sets: ours, and the platform's.
		vars := map[string]string{"VERSION": testVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
		expand := func(s string) string {
			return os.Expand(s, func(name string) string {
				v, ok := vars[name]
				if !ok && staticErr == nil {
					staticErr = fmt.Errorf("the Dockerfile's go build uses ${%s}, which the test does not know", name)
				}
				return v
			})
		}
		for i := range env {
			env[i] = expand(env[i])
		}
		for i, a := range args {
			args[i] = expand(a)
			if i > 0 && args[i-1] == "-o" {
				args[i] = staticBin
			}
		}
		if staticErr != nil {
			return
		}
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = ".." // the Dockerfile builds from the repository's root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			staticErr = fmt.Errorf("go build %q: %v\n%s", args, err, out)
		}
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticBin
}

var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

// TestDockerfile checks what the Dockerfile promises: a build stage and a
// final one that takes only the binary from it; a static binary built
// with -trimpath and the version set through main.version; a non-root
// user; the data directory a volume; the API port exposed; a health check
// on /readyz that runs without a shell.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	env, args, build := goBuild(t, stages)
	final := stages[len(stages)-1]
	if build.Name == "" || build.Name == final.Name {
		t.Fatalf("go build runs in stage %q, want a named build stage before the final one", build.Name)
	}
	if !slices.Contains(env, "CGO_ENABLED=0") && !slices.ContainsFunc(build.find("ENV"), func(in instruction) bool {
		return strings.Contains(in.Args, "CGO_ENABLED=0")
	}) {
		t.Errorf("go build without CGO_ENABLED=0 (env %q): the binary would not be static", env)
	}
	if !slices.Contains(args, "-trimpath") {
		t.Errorf("go build %q: want -trimpath", args)
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "-X main.version=${VERSION}") }) {
		t.Errorf("go build %q: want -ldflags with -X main.version=${VERSION}", args)
	}
	var declared []string
	for _, in := range build.find("ARG") {
		for _, f := range strings.Fields(in.Args) {
			name, _, _ := strings.Cut(f, "=")
			declared = append(declared, name)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(strings.Join(append(env, args...), " "), -1) {
		if !slices.Contains(declared, m[1]) {
			t.Errorf("go build uses ${%s}, which the build stage declares no ARG for: it would be empty", m[1])
		}
	}
	if !slices.Contains(declared, "VERSION") {
		t.Error("the build stage declares no ARG VERSION")
	}

	copies := final.find("COPY")
	if len(copies) == 0 || !slices.ContainsFunc(copies, func(in instruction) bool { return strings.Contains(in.Args, "--from="+build.Name) }) {
		t.Errorf("the final stage copies nothing from %q", build.Name)
	}
	if !strings.Contains(final.From, "distroless/static") && final.From != "scratch" {
		t.Errorf("final base %q: want distroless/static or scratch, for a static binary", final.From)
	}

	users := final.find("USER")
	if len(users) == 0 {
		t.Fatal("no USER: the server would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1].Args, ":")
	if user == "root" || user == "0" || user == "" {
		t.Errorf("USER %s: want a non-root user", users[len(users)-1].Args)
	}

	volumes, workdirs := final.find("VOLUME"), final.find("WORKDIR")
	if len(volumes) == 0 || len(workdirs) == 0 || volumes[0].Args != workdirs[len(workdirs)-1].Args {
		t.Errorf("VOLUME %v, WORKDIR %v: want the working directory a volume, so the default data_dir (./data) persists", volumes, workdirs)
	}

	exposed := final.find("EXPOSE")
	if len(exposed) == 0 || !strings.Contains(exposed[0].Args, "8750") {
		t.Errorf("EXPOSE %v: want the API's port, 8750", exposed)
	}

	hcs := final.find("HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("%d HEALTHCHECK instructions, want 1", len(hcs))
	}
	_, cmd, ok := strings.Cut(hcs[0].Args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: no CMD", hcs[0].Args)
	}
	argv := execForm(t, hcs[0], cmd)
	if !slices.ContainsFunc(argv, func(a string) bool { return strings.HasSuffix(a, ":8750/readyz") }) {
		t.Errorf("HEALTHCHECK %q: want it to ask :8750/readyz", argv)
	}
	checkHealthcheck(t, argv)

	entry := final.find("ENTRYPOINT")
	if len(entry) != 1 {
		t.Fatalf("%d ENTRYPOINT instructions, want 1", len(entry))
	}
	if e := execForm(t, entry[0], entry[0].Args); e[0] != argv[0] {
		t.Errorf("ENTRYPOINT %q, but HEALTHCHECK runs %q", e[0], argv[0])
	}
}

// checkHealthcheck runs the HEALTHCHECK's command, with the static binary
// in place of the image's and a test server's address in place of
// 127.0.0.1:8750: it must succeed while /readyz answers 200 and fail on
// 503, as Docker reads the exit status.
func checkHealthcheck(t *testing.T, argv []string) {
	t.Helper()
	var unready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || unready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	args := slices.Clone(argv[1:])
	for i, a := range args {
		args[i] = strings.Replace(a, "http://127.0.0.1:8750", srv.URL, 1)
	}
	bin := staticBinary(t)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Errorf("HEALTHCHECK %q with /readyz 200: %v\n%s", args, err, out)
	}
	unready.Store(true)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil {
		t.Errorf("HEALTHCHECK %q with /readyz 503: exit 0, want 1\n%s", args, out)
	}
}

// TestStaticBinary: the binary the Dockerfile's go build makes is static
// (no program interpreter, no dynamic section: it needs no C library, so
// it runs on a base that has none), was built with -trimpath and
// CGO_ENABLED=0, and reports the VERSION it was given.
func TestStaticBinary(t *testing.T) {
	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: the binary is dynamically linked", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Error("the binary has a .dynamic section: it is dynamically linked")
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "wxtoken "+testVersion+" ") {
		t.Errorf("wxtoken version = %q; want the VERSION given, %s", out, testVersion)
	}
}
