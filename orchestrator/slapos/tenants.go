package slapos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"replication-manager-pro/config"
	"replication-manager-pro/configurator"
	"replication-manager-pro/tenant"
)

// Shared instances (SlapOS "slave" instances): tenants requesting a database in one of the
// instance's clusters. SlapOS hands the root instance their list as slave_instance_list,
// each entry a slave_reference and the shared instance's parameters (db_password,
// db_charset, cluster-id, require_ssl; possibly serialised in one "_" key holding JSON).
// `slapos render` turns the list into:
//
//   - databases.json: per cluster, the full desired list of its tenant databases, the body
//     of PUT /api/clusters/{c}/databases (`client databases sync --file` sends it);
//   - published-databases.json: per reference, what to publish for that shared instance
//     (url, url_v4, cluster, database, user, require_ssl, ssl_ca), as SlapOS' profile does;
//   - tenant-secrets.json: each reference's password (given, or generated when none was),
//     which later renders keep even if db_password changes: the daemon sets a password at
//     creation only, so the published URL stays the one that works.
//
// Names follow tenant.NamesFor, which needs no state, so the daemon creates exactly the
// names published here. All three files are mode 0600: they hold passwords.

// SharedInstancesKey is the parameter holding the shared-instance list.
const SharedInstancesKey = "slave_instance_list"

// Files written by Render for the shared instances.
const (
	DatabasesFile          = "databases.json"
	PublishedDatabasesFile = "published-databases.json"
	tenantSecretsFile      = "tenant-secrets.json"
)

// SharedInstance is one entry of slave_instance_list, validated.
type SharedInstance struct {
	Reference  string
	Title      string
	Password   string
	Charset    string
	ClusterID  string
	RequireSSL *bool
}

// sharedParams are the keys of a shared instance's parameters that mean something here;
// SlapOS adds keys of its own (slave_title, slap_software_type, timestamp...), ignored.
var sharedParams = map[string]bool{"db_password": true, "db_charset": true, "cluster-id": true, "require_ssl": true}

// ParseSharedInstances validates a slave_instance_list: a JSON array of objects, each with
// slave_reference. Every problem is one line naming the entry and the parameter.
func ParseSharedInstances(raw json.RawMessage) ([]SharedInstance, error) {
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, &RequestError{Lines: []string{SharedInstancesKey + ": want a list of shared instances (objects with slave_reference)"}}
	}
	var lines []string
	var out []SharedInstance
	seen := map[string]int{}
	for i, e := range entries {
		where := fmt.Sprintf("%s[%d]", SharedInstancesKey, i)
		if s, ok := e[SerialisedKey]; ok {
			var text string
			var inner map[string]json.RawMessage
			if json.Unmarshal(s, &text) != nil || checkJSON([]byte(text)) != nil || json.Unmarshal([]byte(text), &inner) != nil {
				lines = append(lines, where+": _: want a string holding a JSON object of parameters")
				continue
			}
			delete(e, SerialisedKey)
			for k, v := range inner {
				if _, dup := e[k]; !dup {
					e[k] = v
				}
			}
		}
		var si SharedInstance
		str := func(key string, dst *string) bool {
			v, ok := e[key]
			if !ok || string(v) == "null" {
				return true
			}
			if json.Unmarshal(v, dst) != nil {
				lines = append(lines, fmt.Sprintf("%s: %s: want a string", where, key))
				return false
			}
			return true
		}
		if !str("slave_reference", &si.Reference) || !str("slave_title", &si.Title) || !str("db_password", &si.Password) ||
			!str("db_charset", &si.Charset) || !str("cluster-id", &si.ClusterID) {
			continue
		}
		if v, ok := e["require_ssl"]; ok && string(v) != "null" {
			var b bool
			var s string
			switch {
			case json.Unmarshal(v, &b) == nil:
			case json.Unmarshal(v, &s) == nil && (strings.EqualFold(s, "true") || strings.EqualFold(s, "false")):
				b = strings.EqualFold(s, "true")
			default:
				lines = append(lines, fmt.Sprintf("%s: require_ssl: want true or false", where))
				continue
			}
			si.RequireSSL = &b
		}
		if si.Reference == "" {
			lines = append(lines, where+": slave_reference: missing")
			continue
		}
		if err := tenant.ValidateReference(si.Reference); err != nil {
			lines = append(lines, fmt.Sprintf("%s: slave_reference %s: %v", where, keyName(si.Reference), err))
			continue
		}
		where = fmt.Sprintf("%s[%d] (%s)", SharedInstancesKey, i, si.Reference)
		if j, dup := seen[si.Reference]; dup {
			lines = append(lines, fmt.Sprintf("%s: slave_reference also in entry %d", where, j))
			continue
		}
		seen[si.Reference] = i
		if _, err := (tenant.Request{Reference: si.Reference, Password: si.Password, Charset: si.Charset}).Validate(); err != nil {
			if fe, ok := err.(*tenant.FieldError); ok {
				lines = append(lines, fmt.Sprintf("%s: %s: %s", where, fe.Field, fe.Msg))
			} else {
				lines = append(lines, fmt.Sprintf("%s: %v", where, err))
			}
			continue
		}
		if si.ClusterID != "" && config.ValidateClusterName(si.ClusterID) != nil {
			si.ClusterID = "" // no such cluster: SlapOS' rule sends it to the first one
		}
		out = append(out, si)
	}
	if len(lines) > 0 {
		return nil, &RequestError{Lines: lines}
	}
	return out, nil
}

// takeSharedInstances removes slave_instance_list from the top-level parameters (it is
// not one of the request schema's) and parses it.
func takeSharedInstances(top map[string]json.RawMessage) ([]SharedInstance, error) {
	raw, ok := top[SharedInstancesKey]
	if !ok {
		return nil, nil
	}
	delete(top, SharedInstancesKey)
	return ParseSharedInstances(raw)
}

// ReadSharedInstances reads a shared-instance list given apart from the parameters (the
// --shared-instances file of `slapos render`): a JSON array, or an object holding
// slave_instance_list.
func ReadSharedInstances(data []byte) ([]SharedInstance, error) {
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] == '[' {
		data = append(append([]byte(`{"`+SharedInstancesKey+`": `), t...), '}')
	}
	if err := checkJSON(data); err != nil {
		return nil, &RequestError{Lines: []string{err.Error()}}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, &RequestError{Lines: []string{"not a JSON object: " + err.Error()}}
	}
	raw, ok := top[SharedInstancesKey]
	if !ok || len(top) != 1 {
		return nil, &RequestError{Lines: []string{"want a JSON list of shared instances, or an object with only " + SharedInstancesKey}}
	}
	return ParseSharedInstances(raw)
}

// DatabaseEntry is one entry of databases.json: a PUT body entry.
type DatabaseEntry struct {
	Reference  string `json:"reference"`
	DBPassword string `json:"db_password"`
	DBCharset  string `json:"db_charset,omitempty"`
	RequireSSL bool   `json:"require_ssl"`
}

// DatabasesDoc is databases.json: per cluster, {"databases": [...]}.
type DatabasesDoc map[string]struct {
	Databases []DatabaseEntry `json:"databases"`
}

// renderTenants places each shared instance in its cluster (cluster-id, else the first
// cluster of repman-cluster-dict by name), picks its password (given, kept from an earlier render, or generated)
// and returns the three files' contents. cfg is the configuration just rendered.
func renderTenants(req *Request, cfg *config.Config, out string) (map[string][]byte, error) {
	shared := req.SharedInstances
	requested := map[string]bool{}
	for _, c := range req.Clusters {
		requested[strings.ToLower(c.Name)] = true
	}
	names := make([]string, 0, len(cfg.Clusters))
	byName := map[string]*config.Cluster{}
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		if !requested[strings.ToLower(c.Name)] { // the operator's own files: not SlapOS' clusters
			continue
		}
		names = append(names, c.Name)
		byName[strings.ToLower(c.Name)] = c
	}
	sort.Strings(names)
	prev := map[string]map[string]string{} // cluster -> reference -> password
	if b, err := os.ReadFile(filepath.Join(out, tenantSecretsFile)); err == nil {
		if err := json.Unmarshal(b, &prev); err != nil {
			return nil, fmt.Errorf("%s: %w", tenantSecretsFile, err)
		}
	}
	secrets := map[string]map[string]string{}
	doc := DatabasesDoc{}
	for _, n := range names {
		doc[n] = struct {
			Databases []DatabaseEntry `json:"databases"`
		}{Databases: []DatabaseEntry{}}
	}
	published := map[string]tenant.Published{}
	endpoints := map[string]tenant.Endpoints{}
	for _, si := range shared {
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no cluster to place shared instance %s in", SharedInstancesKey, si.Reference)
		}
		c, ok := byName[strings.ToLower(si.ClusterID)]
		if !ok {
			c = byName[strings.ToLower(names[0])]
		}
		// The password of an earlier render wins: the daemon sets it at creation only.
		pw := prev[c.Name][si.Reference]
		if pw == "" {
			pw = si.Password
		}
		if pw == "" {
			p, err := tenant.GeneratePassword()
			if err != nil {
				return nil, err
			}
			pw = p
		}
		if secrets[c.Name] == nil {
			secrets[c.Name] = map[string]string{}
		}
		secrets[c.Name][si.Reference] = pw
		req := tenant.Request{Reference: si.Reference, Password: pw, Charset: si.Charset, RequireSSL: si.RequireSSL}
		spec, err := req.Validate()
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", SharedInstancesKey, si.Reference, err)
		}
		e := doc[c.Name]
		e.Databases = append(e.Databases, DatabaseEntry{Reference: spec.Reference, DBPassword: pw, DBCharset: spec.Charset, RequireSSL: spec.RequireSSL})
		doc[c.Name] = e
		ep, ok := endpoints[c.Name]
		if !ok {
			if ep, err = tenantEndpoints(c); err != nil {
				return nil, err
			}
			endpoints[c.Name] = ep
		}
		published[si.Reference] = tenant.Publish(c.Name, tenant.NamesFor(si.Reference), pw, spec.RequireSSL, ep)
	}
	files := map[string][]byte{}
	for name, v := range map[string]any{DatabasesFile: doc, PublishedDatabasesFile: published, tenantSecretsFile: secrets} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		files[name] = append(b, '\n')
	}
	return files, nil
}

// tenantEndpoints are the cluster's proxy addresses, with the cluster CA when its
// databases or proxies speak TLS (tag ssl): the CA and the servers' certificates are created
// here if the daemon has not yet, with the proxies' addresses among the server
// certificate's names, so that a client verifies the server it reaches through a proxy.
func tenantEndpoints(c *config.Cluster) (tenant.Endpoints, error) {
	s := &c.Settings
	if hasSSLTag(s.ProvDBTags) || hasSSLTag(s.ProvProxyTags) {
		var sans []string
		if hosts, err := s.Hosts(); err == nil {
			for _, h := range hosts {
				sans = append(sans, h.Host)
			}
		}
		for _, k := range []string{"proxysql-servers", "proxysql-servers-ipv6", "haproxy-servers", "haproxy-servers-ipv6"} {
			for _, h := range s.List(k) {
				sans = append(sans, strings.Trim(hostPart(h), "[]"))
			}
		}
		dir := filepath.Join(configurator.WorkingDir(s), c.Name)
		if _, err := configurator.ClusterTLS(dir, c.Name, sans); err != nil {
			return tenant.Endpoints{}, err
		}
	}
	return tenant.EndpointsFromSettings(c.Name, s), nil
}

func hostPart(h string) string {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i > 0 {
			return h[:i+1]
		}
	}
	if strings.Count(h, ":") == 1 {
		if host, port, ok := strings.Cut(h, ":"); ok {
			if _, err := strconv.Atoi(port); err == nil {
				return host
			}
		}
	}
	return h
}

func hasSSLTag(list string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(t), "ssl") {
			return true
		}
	}
	return false
}
