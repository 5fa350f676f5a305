package api

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"time"

	"replication-manager-pro/configurator"
)

// CertificateInfo is the public part of one of the cluster's certificates: what it is
// for and when it expires. Keys are never read here.
type CertificateInfo struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	DNSNames  []string  `json:"dnsNames,omitempty"`
	IPs       []string  `json:"ipAddresses,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	DaysLeft  int       `json:"daysLeft"`
	IsCA      bool      `json:"isCA"`
}

// handleCertificates answers the cluster's certificates (the CA, the servers' and the
// clients'), made with the first bundle or URL that needs them: 404 before that.
func (s *Server) handleCertificates(w http.ResponseWriter, _ *http.Request, rc *reqCtx) {
	paths := configurator.ClusterTLSPaths(&rc.member.Config.Settings, rc.member.Name)
	out := []CertificateInfo{}
	for name, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			continue // a key file: never shown
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": fmt.Sprintf("%s: %v", name, err)})
			return
		}
		ci := CertificateInfo{File: name, Subject: c.Subject.String(), Issuer: c.Issuer.String(), DNSNames: c.DNSNames,
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, DaysLeft: int(time.Until(c.NotAfter).Hours() / 24), IsCA: c.IsCA}
		for _, ip := range c.IPAddresses {
			ci.IPs = append(ci.IPs, ip.String())
		}
		out = append(out, ci)
	}
	if len(out) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "cluster " + rc.member.Name +
			" has no certificates yet: they are made with the first bundle of a database with the ssl tag, or the first tenant URL"})
		return
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	writeJSON(w, http.StatusOK, out)
}
