package syncclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offline-loyalty/terminal/agent"
	"github.com/offline-loyalty/terminal/sync/syncclient"
	"github.com/offline-loyalty/terminal/sync/syncserver"
)

// selfSigned makes a throwaway CA certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "head office test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestSyncOverTLSWithPinnedCA: a terminal joins over https and syncs over
// wss:// to a head office whose certificate only the pinned CA vouches for;
// without the pin, joining is refused.
func TestSyncOverTLSWithPinnedCA(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cert, caPEM := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHQ(t, ln, syncserver.Options{Logger: quiet})
	url := "wss://" + ln.Addr().String() + "/v1/sync"

	dir := t.TempDir()
	a, err := agent.Open(ctx, dir, agent.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, code, err := srv.AddTerminal(context.Background(), "tls", "till")
	if err != nil {
		t.Fatal(err)
	}
	// Without the pinned CA the certificate is not trusted.
	if _, err := syncclient.Join(ctx, a, dir, url, code, false); err == nil {
		t.Fatal("joined a head office whose certificate nothing vouches for")
	}
	if err := os.WriteFile(filepath.Join(dir, syncclient.CAFile), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := syncclient.Join(ctx, a, dir, url, code, false); err != nil {
		t.Fatalf("join with the pinned CA: %v", err)
	}
	if _, err := a.Enroll(ctx, agent.EnrollRequest{Card: "4000000000000002"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Earn(ctx, agent.EarnRequest{Card: "4000000000000002", Amount: "10"}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = syncclient.Run(ctx, a, dir, "", quiet) }()
	for deadline := time.Now().Add(20 * time.Second); a.Acked() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("events not acked over wss://: %+v", a.Status())
		}
	}
	if !a.Status().Online {
		t.Fatal("link not online")
	}
}

// TestCleartextOnlyToThisMachine: a ws:// URL to another machine is refused
// before anything is sent (the join code would travel in clear), unless
// asked for; ws:// to loopback and wss:// anywhere are allowed.
func TestCleartextOnlyToThisMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	dir := t.TempDir()
	a, err := agent.Open(ctx, dir, agent.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, url := range []string{"ws://192.0.2.1:8780/v1/sync", "ws://hq.example.com/v1/sync", "ws://[2001:db8::1]/v1/sync"} {
		_, err := syncclient.Join(ctx, a, dir, url, "CODE-CODE-CODE", false)
		if err == nil || !strings.Contains(err.Error(), "in clear") {
			t.Fatalf("%s: %v, want a refusal of cleartext", url, err)
		}
		if _, err := os.Stat(filepath.Join(dir, syncclient.KeyFile)); err == nil {
			t.Fatalf("%s: a key was made for a refused URL", url)
		}
	}
	for _, url := range []string{"ws://192.0.2.1:1/v1/sync", "ws://127.0.0.1:1/v1/sync", "ws://localhost:1/v1/sync", "wss://127.0.0.1:1/v1/sync"} {
		insecure := strings.HasPrefix(url, "ws://192.")
		if _, err := syncclient.Join(ctx, a, dir, url, "CODE-CODE-CODE", insecure); err == nil || strings.Contains(err.Error(), "in clear") {
			t.Fatalf("%s (insecure %v): %v, want it tried", url, insecure, err)
		}
	}
}
