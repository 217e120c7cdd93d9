// Package kubetest starts a real kube-apiserver (with embedded etcd, built by
// test/apiserver/build.sh) on loopback for one test and hands back client
// configurations for an admin and for a user bound to a given RBAC role.
//
// It guarantees that the server answers /readyz before Start returns, and
// that the process is killed and its data removed in t.Cleanup.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "EDGED_TEST_APISERVER"

// defaultBinary is where test/apiserver/build.sh writes the binary, relative
// to the repository root.
const defaultBinary = "test/apiserver/bin/testapiserver"

// readyTimeout bounds the wait for /readyz; the server is ready in ~3 s when
// idle (measured), but other tests compile and run at the same time.
const readyTimeout = 90 * time.Second

// Users whose tokens are in the static token file: Admin is in
// system:masters, the others have no permissions until a test binds a role.
const (
	Admin = "admin"
	Edged = "edged"
	Other = "other"
)

// Server is a running test apiserver.
type Server struct {
	// URL is the https address of the apiserver.
	URL  string
	dir  string
	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the test apiserver binary path or an error telling how to
// build it.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w (run make testapiserver)", EnvBinary, p, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, defaultBinary)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("test apiserver %s missing: run make testapiserver", p)
	}
	return p, nil
}

// EdgedRole reads edged's ClusterRole from configs/rbac.yaml (its first
// document), so tests run edged with exactly what operators grant.
func EdgedRole(t testing.TB) *rbacv1.ClusterRole {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "configs", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(b), "\n---\n")
	var r rbacv1.ClusterRole
	if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatalf("configs/rbac.yaml: %v", err)
	}
	return &r
}

// RepoRoot finds the module root (github.com/goldentooth/edged) above the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for i := 0; i < 20; i++ {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/goldentooth/edged\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("repository root (go.mod of github.com/goldentooth/edged) not found above the working directory")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a fresh apiserver for t and waits until it is ready.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir)
	port := freePort(t)
	s := &Server{URL: fmt.Sprintf("https://127.0.0.1:%d", port), dir: dir}
	args := []string{
		"--etcd-dir", filepath.Join(dir, "etcd"),
		"--etcd-port", fmt.Sprint(freePort(t)),
		"--etcd-peer-port", fmt.Sprint(freePort(t)),
		"--",
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + filepath.Join(dir, "sa.pem"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.pem"),
		"--service-account-issuer=https://kubernetes.default.svc",
		// Dual-stack, so tests can create IPv6 Services (IPv4 stays the
		// default family).
		"--service-cluster-ip-range=10.96.0.0/16,fd00:96::/108",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--v=0",
	}
	s.bin, s.args = bin, args
	s.start(t)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath()); err == nil {
				t.Logf("apiserver log (tail):\n%s", tail(string(b), 3000))
			}
		}
	})
	return s
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "apiserver.log") }

func (s *Server) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(readyTimeout); err != nil {
		b, _ := os.ReadFile(s.logPath())
		t.Fatalf("apiserver not ready: %v\nlog tail:\n%s", err, tail(string(b), 3000))
	}
}

// kill ends the process (if it runs) and waits for it.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Stop kills the apiserver (and its embedded etcd) as a crash or an outage
// would, and waits until the process is gone; clients see connections
// refused. Restart brings it back with the same data and port.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the apiserver again after Stop, on the same port with the
// same etcd data, and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
	default:
		t.Fatal("kubetest: Restart while the apiserver runs (call Stop first)")
	}
	s.start(t)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *Server) waitReady(d time.Duration) error {
	cs := kubernetes.NewForConfigOrDie(s.Config(Admin))
	deadline := time.Now().Add(d)
	var last error
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("process exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, last = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no /readyz within %v: %w", d, last)
}

func token(user string) string { return "token-" + user }

func writeFiles(t testing.TB, dir string) {
	t.Helper()
	tokens := fmt.Sprintf("%s,%s,1,\"system:masters\"\n%s,%s,2\n%s,%s,3\n",
		token(Admin), Admin, token(Edged), Edged, token(Other), Other)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, "sa.pem"), pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Config returns a client configuration authenticating as user (Admin,
// Edged or Other). The serving certificate is self-signed, so TLS
// verification is off: loopback only.
func (s *Server) Config(user string) *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     token(user),
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             500,
		Burst:           1000,
	}
}

// Client returns an admin clientset.
func (s *Server) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(s.Config(Admin))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// BindClusterRole creates role (cluster-wide) and binds it to user, and
// returns the user's client configuration.
func (s *Server) BindClusterRole(t testing.TB, user string, role *rbacv1.ClusterRole) *rest.Config {
	t.Helper()
	ctx := context.Background()
	cs := s.Client(t)
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrole %s: %v", role.Name, err)
	}
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-" + user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrolebinding: %v", err)
	}
	return s.Config(user)
}

// Namespace creates a fresh namespace for t (namespaces never finish
// deleting here: no controller-manager runs) and returns its name.
func (s *Server) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	got, err := s.Client(t).CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return got.Name
}
