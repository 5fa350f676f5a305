package slaposim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// tlsNames are the TLS configurations registered with the driver, one per (host, CA).
var tlsNames struct {
	sync.Mutex
	m map[string]string
}

// OpenTenant opens a published tenant URL (mysql://USER:PASS@HOST:PORT/DB) as a client
// on another network would: TLS required, the server's certificate verified against the
// published CA for the host of the URL. The caller closes the handle.
func OpenTenant(rawURL, caPEM string) (*sql.DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "mysql" || u.User == nil {
		return nil, errors.New("not a mysql://USER:PASS@HOST:PORT/DB URL")
	}
	pw, _ := u.User.Password()
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("tenant URL host: %w", err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = u.User.Username(), pw, "tcp", net.JoinHostPort(host, port)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 3*time.Second, 10*time.Second, 10*time.Second
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("published ssl_ca: no certificate")
		}
		tlsNames.Lock()
		if tlsNames.m == nil {
			tlsNames.m = map[string]string{}
		}
		name, ok := tlsNames.m[host+"\x00"+caPEM]
		if !ok {
			name = fmt.Sprintf("slaposim-%d", len(tlsNames.m)+1)
			if err := mysql.RegisterTLSConfig(name, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
				tlsNames.Unlock()
				return nil, err
			}
			tlsNames.m[host+"\x00"+caPEM] = name
		}
		tlsNames.Unlock()
		cfg.TLSConfig = name
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	db.SetConnMaxLifetime(5 * time.Second) // across a failover, a fresh connection reaches the new master
	return db, nil
}

// TenantAnswers reports whether a tenant URL answers a query over TLS, and the cipher used.
func TenantAnswers(ctx context.Context, rawURL, caPEM string) (string, error) {
	db, err := OpenTenant(rawURL, caPEM)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var name, cipher string
	if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		return "", err
	}
	if cipher == "" {
		return "", errors.New("the connection is not encrypted")
	}
	return cipher, nil
}
