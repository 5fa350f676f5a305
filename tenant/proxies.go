package tenant

import (
	"context"
	"time"

	"replication-manager-pro/config"
	"replication-manager-pro/proxysql"
)

// proxySQLUsers keeps the tenant users of one ProxySQL through its admin interface.
type proxySQLUsers struct {
	admin     *proxysql.Admin
	marker    string
	hostgroup int
	save      bool
	// tls: ProxySQL speaks TLS to clients (proxy tag ssl); only then can it require it of
	// the tenants' clients (mysql_users.use_ssl).
	tls bool
}

func (p *proxySQLUsers) Name() string { return "proxysql " + p.admin.Addr().String() }

func (p *proxySQLUsers) Sync(ctx context.Context, want []ProxyUser, remove []string) (int, error) {
	users := make([]proxysql.TenantUser, 0, len(want))
	for _, u := range want {
		users = append(users, proxysql.TenantUser{Username: u.User, PasswordHash: u.PasswordHash, UseSSL: u.RequireSSL && p.tls})
	}
	return p.admin.SyncTenantUsers(ctx, p.marker, p.hostgroup, users, remove, p.save)
}

// ProxySQLUsers opens the admin interface of each ProxySQL of a cluster (proxysql-servers,
// proxysql-admin-port, proxysql-user/-password) for the tenant user sync; close releases
// them. Tenant users go to the writer hostgroup (proxysql-writer-hostgroup), are saved to
// disk with proxysql-save-to-disk, and require TLS of their clients when the tenant asked
// for it and the proxy speaks TLS (proxy tag ssl). A cluster without proxysql has none.
func ProxySQLUsers(cluster string, s *config.Settings) (_ []ProxyUsers, closeAll func(), err error) {
	var out []ProxyUsers
	var admins []*proxysql.Admin
	closeAll = func() {
		for _, a := range admins {
			a.Close()
		}
	}
	if !s.ProxySQL {
		return nil, closeAll, nil
	}
	opts, err := proxysql.OptionsFromSettings(cluster, s, nil, nil)
	if err != nil {
		return nil, closeAll, err
	}
	tls := hasTag(s.ProvProxyTags, "ssl")
	for _, o := range opts {
		if o.Admin.ConnectTimeout <= 0 {
			o.Admin.ConnectTimeout = 2 * time.Second
		}
		a, err := proxysql.OpenAdmin(o.Admin)
		if err != nil {
			closeAll()
			return nil, func() {}, err
		}
		admins = append(admins, a)
		out = append(out, &proxySQLUsers{admin: a, marker: proxysql.TenantMarker(cluster), hostgroup: o.Hostgroups.Writer, save: o.SaveToDisk, tls: tls})
	}
	return out, closeAll, nil
}
