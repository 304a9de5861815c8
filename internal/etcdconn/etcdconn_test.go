package etcdconn

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/dev/etcdcluster"
	"github.com/uraiden/uraiden/internal/testkit/tlstest"
)

func startCluster(t *testing.T, opts etcdcluster.Options) *etcdcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts.Dir = t.TempDir()
	c, err := etcdcluster.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// etcdConfig is the configuration's defaults for these endpoints, with a dial timeout short
// enough for the failures to come quickly and long enough for a busy machine.
func etcdConfig(endpoints []string) config.Etcd {
	e := config.Default().Ledger.Etcd
	e.Endpoints, e.DialTimeout = endpoints, 3*time.Second
	return e
}

// mustConnect connects and checks that a write and a read under the prefix work.
func mustConnect(t *testing.T, e config.Etcd) {
	t.Helper()
	client, err := Connect(t.Context(), e, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	roundTrip(t, client, e.Prefix)
}

func roundTrip(t *testing.T, client *clientv3.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := client.Put(ctx, prefix+"k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(ctx, prefix+"k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("read back: %v %v", resp, err)
	}
}

// refused connects, expects an error containing want within the dial timeout (and some
// slack for a busy machine), and returns it.
func refused(t *testing.T, e config.Etcd, want string) error {
	t.Helper()
	start := time.Now()
	client, err := Connect(t.Context(), e, nil)
	if err == nil {
		client.Close()
		t.Fatalf("connected with %+v", e)
	}
	if took := time.Since(start); took > e.DialTimeout+2*time.Second {
		t.Errorf("refused after %s, dial timeout %s", took, e.DialTimeout)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	t.Log(err)
	return err
}

func TestConnectPlainHTTP(t *testing.T) {
	c := startCluster(t, etcdcluster.Options{})
	var logs bytes.Buffer
	e := etcdConfig(c.Endpoints())
	client, err := Connect(t.Context(), e, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	roundTrip(t, client, e.Prefix)
	if !strings.Contains(logs.String(), "connected to etcd") {
		t.Errorf("log: %s", &logs)
	}

	// One member down: a quorum remains, and the client finds it.
	c.Stop(0)
	mustConnect(t, e)
}

// Nothing listens: the error names the endpoint and comes within the dial timeout.
func TestConnectToAClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	e := etcdConfig([]string{endpoint})
	e.DialTimeout = time.Second
	refused(t, e, "etcd "+endpoint+": no quorum answered within ledger.etcd.dial_timeout (1s) (127.0.0.1:")
}

// Two members of three down: no quorum, so no linearizable read, so Connect refuses.
func TestConnectWithoutAQuorum(t *testing.T) {
	c := startCluster(t, etcdcluster.Options{})
	c.Stop(0)
	c.Stop(1)
	e := etcdConfig(c.Endpoints())
	e.DialTimeout = time.Second
	refused(t, e, "no quorum answered within ledger.etcd.dial_timeout (1s) (127.0.0.1:")
}

// The members serve https and ask for client certificates signed by their CA: a client
// with one connects; without one, with one of another CA, or not trusting the members'
// CA, it is refused.
func TestConnectMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "etcd-ca"), tlstest.NewCA(t, "other-ca")
	caFile, otherCAFile := ca.WriteCA(t, dir, "ca"), other.WriteCA(t, dir, "other-ca")
	serverCert, serverKey := ca.Server("etcd").Write(t, dir, "server")
	clientCert, clientKey := ca.Client("uraiden").Write(t, dir, "client")
	strangerCert, strangerKey := other.Client("stranger").Write(t, dir, "stranger")
	c := startCluster(t, etcdcluster.Options{ClientTLS: &transport.TLSInfo{
		CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: caFile, ClientCertAuth: true,
		ClientCertFile: clientCert, ClientKeyFile: clientKey,
	}})
	if !strings.HasPrefix(c.Endpoints()[0], "https://") {
		t.Fatalf("endpoints %v", c.Endpoints())
	}
	// The cluster's own client works too.
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cli, "/cluster-client/")
	cli.Close()

	good := etcdConfig(c.Endpoints())
	good.TLS = config.EtcdTLS{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey}
	if err := (config.Config{Ledger: config.Ledger{Backend: config.BackendEtcd, Etcd: good}}).CheckFiles(); err != nil {
		t.Fatal(err)
	}
	mustConnect(t, good)
	named := good
	named.TLS.ServerName = "localhost" // in the members' certificate
	mustConnect(t, named)

	for _, c := range []struct {
		name string
		tls  config.EtcdTLS
		why  string // the probe's finding
	}{
		{"no client certificate", config.EtcdTLS{CAFile: caFile}, "tls: certificate required"},
		// crypto/tls sends no certificate the member's CA did not sign.
		{"a client certificate of another CA", config.EtcdTLS{CAFile: caFile, CertFile: strangerCert, KeyFile: strangerKey}, "tls: certificate required"},
		{"the members' CA not trusted", config.EtcdTLS{CAFile: otherCAFile, CertFile: clientCert, KeyFile: clientKey}, "certificate signed by unknown authority"},
		{"the system's roots", config.EtcdTLS{CertFile: clientCert, KeyFile: clientKey}, "certificate signed by unknown authority"},
		{"a server name not in the certificate", config.EtcdTLS{CAFile: caFile, CertFile: clientCert, KeyFile: clientKey, ServerName: "etcd.example"}, "not etcd.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := good
			e.TLS, e.DialTimeout = c.tls, time.Second
			err := refused(t, e, "etcd "+strings.Join(e.Endpoints, ",")+": no quorum answered")
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("the error does not say %q", c.why)
			}
		})
	}

	// Files that do not load are reported before any connection, under their key.
	e := good
	e.TLS.KeyFile = filepath.Join(dir, "missing.key")
	refused(t, e, "ledger.etcd.tls: key_file:")
}

// With auth enabled, the user connects with the password from its file and may use its
// prefix; a wrong password, no user, or a prefix outside its role's permission are
// refused, and the password never appears in the log or an error.
func TestConnectWithPassword(t *testing.T) {
	c := startCluster(t, etcdcluster.Options{Members: 1})
	enableAuth(t, c, "uraiden", "s3cret-Pa55", "/uraiden/")
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "etcd.password")
	tlstest.WriteFile(t, passwordFile, []byte("s3cret-Pa55\n"))
	wrongFile := filepath.Join(dir, "wrong.password")
	tlstest.WriteFile(t, wrongFile, []byte("not-it\n"))

	e := etcdConfig(c.Endpoints())
	e.Username, e.PasswordFile = "uraiden", passwordFile
	var logs bytes.Buffer
	client, err := Connect(t.Context(), e, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, client, e.Prefix)
	client.Close()
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "username=uraiden") {
		t.Errorf("log: %s", &logs)
	}

	wrong := e
	wrong.PasswordFile = wrongFile
	err = refused(t, wrong, "etcd "+e.Endpoints[0]+": connect: etcdserver: authentication failed")
	anonymous := e
	anonymous.Username, anonymous.PasswordFile = "", ""
	err2 := refused(t, anonymous, "etcd "+e.Endpoints[0]+": reading under /uraiden/: etcdserver: user name is empty")
	elsewhere := e
	elsewhere.Prefix = "/other/"
	err3 := refused(t, elsewhere, "reading under /other/: etcdserver: permission denied")
	// Authentication comes first, and a dead cluster is found there.
	c.Stop(0)
	down := e
	down.DialTimeout = time.Second
	err4 := refused(t, down, "no member answered the authentication within ledger.etcd.dial_timeout (1s) (127.0.0.1:")
	for _, err := range []error{err, err2, err3, err4} {
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "not-it") {
			t.Errorf("an error shows a password: %v", err)
		}
	}
}

// enableAuth creates root and a user allowed to read and write under prefix, then turns
// authentication on.
func enableAuth(t *testing.T, c *etcdcluster.Cluster, user, password, prefix string) {
	t.Helper()
	cli, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	role := user + "-ledger"
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-password"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.UserAdd(ctx, user, password); return err },
		func() error { _, err := cli.RoleAdd(ctx, role); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, role, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, user, role); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enabling auth: %v", err)
		}
	}
}
