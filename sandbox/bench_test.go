package sandbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"herald/sandbox"
)

// BenchmarkSend measures accepted sends per second through each partner
// endpoint over loopback, next to a bare net/http handler answering 202 to
// the same requests in the same run. Compare the sends/s metrics: the goal
// is every partner within 2x of "bare".
func BenchmarkSend(b *testing.B) {
	sb, err := sandbox.Start(context.Background(), sandbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	bare := startBare(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}

	for _, bc := range []struct {
		name string
		req  func(base string) (*http.Request, error)
		want int
	}{
		{"sendgrid", sendgridRequest, http.StatusAccepted},
		{"postmark", postmarkRequest, http.StatusOK},
		{"mailgun", mailgunRequest, http.StatusOK},
		{"ses", sesRequest, http.StatusOK},
	} {
		b.Run(bc.name+"/bare", func(b *testing.B) { runSends(b, client, bare, bc.req, http.StatusAccepted) })
		b.Run(bc.name+"/sandbox", func(b *testing.B) { runSends(b, client, sb.URL, bc.req, bc.want) })
	}
	b.Run("smtp/sandbox", func(b *testing.B) { runSMTP(b, sb.SMTPAddr) })
}

func runSends(b *testing.B, client *http.Client, base string, build func(string) (*http.Request, error), want int) {
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := build(base)
			if err != nil {
				b.Error(err)
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}

// startBare serves a handler that reads the request and answers 202.
func startBare(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func sendgridRequest(base string) (*http.Request, error) {
	body := `{"personalizations":[{"to":[{"email":"oncall@example.com"}],"custom_args":{"notification_id":"n-1","delivery_id":"d-1"}}],` +
		`"from":{"email":"alerts@example.com"},"subject":"CPU high","content":[{"type":"text/plain","value":"p99 above 2s for 5m"}]}`
	req, err := http.NewRequest(http.MethodPost, base+"/v3/mail/send", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer SG.sandbox")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func postmarkRequest(base string) (*http.Request, error) {
	body := `{"From":"alerts@example.com","To":"oncall@example.com","Subject":"CPU high","TextBody":"p99 above 2s for 5m",` +
		`"Metadata":{"notification_id":"n-1","delivery_id":"d-1"}}`
	req, err := http.NewRequest(http.MethodPost, base+"/email", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Postmark-Server-Token", "sandbox-postmark-token")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func mailgunRequest(base string) (*http.Request, error) {
	form := url.Values{"from": {"alerts@mg.example.com"}, "to": {"oncall@example.com"}, "subject": {"CPU high"},
		"text": {"p99 above 2s for 5m"}, "v:notification_id": {"n-1"}, "v:delivery_id": {"d-1"}}
	req, err := http.NewRequest(http.MethodPost, base+"/v3/mg.example.com/messages", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("api", "sandbox-mailgun-key")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

var sesSigner = v4.NewSigner()

func sesRequest(base string) (*http.Request, error) {
	body := []byte(`{"FromEmailAddress":"alerts@example.com","Destination":{"ToAddresses":["oncall@example.com"]},` +
		`"Content":{"Simple":{"Subject":{"Data":"CPU high"},"Body":{"Text":{"Data":"p99 above 2s for 5m"}}}},` +
		`"EmailTags":[{"Name":"notification_id","Value":"n-1"},{"Name":"delivery_id","Value":"d-1"}]}`)
	req, err := http.NewRequest(http.MethodPost, base+"/v2/email/outbound-emails", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIASANDBOXEXAMPLE", SecretAccessKey: "sandbox-ses-secret"}
	err = sesSigner.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ses", "us-east-1", time.Now())
	return req, err
}

// runSMTP sends over one authenticated STARTTLS session per goroutine.
func runSMTP(b *testing.B, addr string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
			b.Error(err)
			return
		}
		if err := c.Auth(smtp.PlainAuth("", "sandbox", "sandbox-smtp-password", "127.0.0.1")); err != nil {
			b.Error(err)
			return
		}
		msg := "From: alerts@example.com\r\nTo: oncall@example.com\r\nSubject: CPU high\r\n\r\np99 above 2s for 5m\r\n"
		for pb.Next() {
			if err := smtpSend(c, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}

func smtpSend(c *smtp.Client, msg string) error {
	if err := c.Mail("alerts@example.com"); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := c.Rcpt("oncall@example.com"); err != nil {
		return fmt.Errorf("rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return c.Reset()
}
