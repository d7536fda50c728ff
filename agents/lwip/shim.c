/*
 * The C side of netconform-agent-lwip (agents/lwip.rs): what Rust cannot reach through
 * lwIP's exported functions alone.
 *
 * - start-up: tcpip_init, the tap netif (tapif_init on the tap named by
 *   PRECONFIGURED_TAPIF), the addresses the harness gives, the MAC it gives;
 * - the socket calls, through lwIP's BSD socket API (lwip_*), non-blocking, the waiting ones
 *   through lwip_poll with the call's timeout; socket options with the constants lwIP was
 *   built with (Debian's build takes them from the system headers: Linux's values);
 * - state read under the core lock: every TCP pcb (listen, bound, active, TIME-WAIT lists)
 *   with its queues, one socket's pcb for TCP_INFO, the ARP table (etharp_get_entry), the
 *   route lookup (ip4_route / ip6_route).
 *
 * Every function returns 0 or a count on success and a negative errno (Linux's numbers:
 * lwIP on Linux uses the system errno.h) on failure; NCF_TIMEDOUT is a wait that ran out.
 * Nothing here prints to stdout: lwIP's own assertion messages do (printf), so the agent
 * moves stdout out of lwIP's way before it starts (ncf_start's caller).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/opt.h"
#include "lwip/etharp.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/ip6.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sockets.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/api.h"
#include "lwip/priv/sockets_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/priv/nd6_priv.h"
#include "netif/tapif.h"
#include <netinet/tcp.h>

#define NCF_TIMEDOUT (-100000)

static struct netif ncf_netif;
static int ncf_started;

/* An address as the Rust side passes it: family 4 or 6 and 16 bytes (IPv4 in the first 4,
 * network order). */
struct ncf_addr {
  uint8_t family;
  uint8_t bytes[16];
};

static void to_ip(const struct ncf_addr *a, ip_addr_t *ip) {
  if (a->family == 6) {
    IP_ADDR6(ip, 0, 0, 0, 0);
    memcpy(ip_2_ip6(ip)->addr, a->bytes, 16);
    ip6_addr_clear_zone(ip_2_ip6(ip));
  } else {
    uint32_t v;
    memcpy(&v, a->bytes, 4);
    ip_addr_set_ip4_u32_val(*ip, v);
    IP_SET_TYPE_VAL(*ip, IPADDR_TYPE_V4);
  }
}

static void from_ip(const ip_addr_t *ip, struct ncf_addr *a) {
  memset(a, 0, sizeof(*a));
  if (IP_IS_V6(ip)) {
    a->family = 6;
    memcpy(a->bytes, ip_2_ip6(ip)->addr, 16);
  } else {
    uint32_t v = ip4_addr_get_u32(ip_2_ip4(ip));
    a->family = 4;
    memcpy(a->bytes, &v, 4);
  }
}

static socklen_t to_sockaddr(const struct ncf_addr *a, uint16_t port,
                             struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (a->family == 6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = lwip_htons(port);
    memcpy(&s6->sin6_addr, a->bytes, 16);
    return sizeof(*s6);
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = lwip_htons(port);
  memcpy(&s4->sin_addr, a->bytes, 4);
  return sizeof(*s4);
}

static void from_sockaddr(const struct sockaddr_storage *ss, struct ncf_addr *a,
                          uint16_t *port) {
  memset(a, 0, sizeof(*a));
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    a->family = 6;
    memcpy(a->bytes, &s6->sin6_addr, 16);
    *port = lwip_ntohs(s6->sin6_port);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    a->family = 4;
    memcpy(a->bytes, &s4->sin_addr, 4);
    *port = lwip_ntohs(s4->sin_port);
  }
}

static int fail(void) { return errno ? -errno : -EIO; }

/* ---- start-up ---------------------------------------------------------------------- */

static void ncf_tcpip_ready(void *arg) {
  sys_sem_t *sem = (sys_sem_t *)arg;
  sys_sem_signal(sem);
}

/* Starts lwIP on the tap `tap` with MAC `mac`, IPv4 `v4/prefix4` (family 0: none) and
 * IPv6 `v6/prefix6` (family 0: none). The tap is open (and lwIP's reader thread running)
 * when it returns 0. `peer_mac`, `peer_v4`, `peer_v6`: when `preresolve`, lwIP knows the
 * peer's MAC before any frame is exchanged (as a static neighbour entry does on Linux):
 * for IPv4 from an ARP reply handed to its input, for IPv6 as a REACHABLE entry of its
 * neighbour cache that does not age within a check. Nothing goes on the wire. Errors are
 * written to `err`. */
int ncf_start(const char *tap, const uint8_t mac[6], const struct ncf_addr *v4,
              uint8_t prefix4, const struct ncf_addr *v6, uint8_t prefix6,
              const uint8_t peer_mac[6], const struct ncf_addr *peer_v4,
              const struct ncf_addr *peer_v6, int preresolve, int mtu, char *err,
              size_t errlen) {
  if (ncf_started) {
    snprintf(err, errlen, "lwIP is already started");
    return -EALREADY;
  }
  if (setenv("PRECONFIGURED_TAPIF", tap, 1) != 0) {
    snprintf(err, errlen, "setenv PRECONFIGURED_TAPIF: %s", strerror(errno));
    return -errno;
  }
  sys_sem_t ready;
  if (sys_sem_new(&ready, 0) != ERR_OK) {
    snprintf(err, errlen, "sys_sem_new failed");
    return -ENOMEM;
  }
  tcpip_init(ncf_tcpip_ready, &ready);
  sys_sem_wait(&ready);
  sys_sem_free(&ready);

  ip4_addr_t ip, mask, gw;
  ip4_addr_set_zero(&ip);
  ip4_addr_set_zero(&mask);
  ip4_addr_set_zero(&gw);
  if (v4->family == 4) {
    uint32_t v;
    memcpy(&v, v4->bytes, 4);
    ip4_addr_set_u32(&ip, v);
    uint32_t m = prefix4 == 0 ? 0 : lwip_htonl(0xffffffffu << (32 - prefix4));
    ip4_addr_set_u32(&mask, m);
  }
  LOCK_TCPIP_CORE();
  /* tapif_init opens the tap (exit(1) with a message on stderr when it cannot) and
   * starts its reader thread; it sets the link up. */
  if (netif_add(&ncf_netif, &ip, &mask, &gw, NULL, tapif_init, tcpip_input) == NULL) {
    UNLOCK_TCPIP_CORE();
    snprintf(err, errlen, "netif_add failed");
    return -EIO;
  }
  memcpy(ncf_netif.hwaddr, mac, 6);
  ncf_netif.hwaddr_len = 6;
  ncf_netif.mtu = (u16_t)mtu;
#if LWIP_IPV6
  ncf_netif.mtu6 = (u16_t)mtu;
#endif
  netif_set_default(&ncf_netif);
  if (v6->family == 6) {
    /* As the harness's Linux labs: no duplicate address detection (the addresses are
     * valid at once), no router solicitation (the link has no router). */
    netif_create_ip6_linklocal_address(&ncf_netif, 1);
    netif_ip6_addr_set_state(&ncf_netif, 0, IP6_ADDR_PREFERRED);
    ip6_addr_t a6;
    memcpy(a6.addr, v6->bytes, 16);
    ip6_addr_clear_zone(&a6);
    s8_t idx = -1;
    if (netif_add_ip6_address(&ncf_netif, &a6, &idx) != ERR_OK || idx < 0) {
      UNLOCK_TCPIP_CORE();
      snprintf(err, errlen, "netif_add_ip6_address failed");
      return -EIO;
    }
    netif_ip6_addr_set_state(&ncf_netif, idx, IP6_ADDR_PREFERRED);
    (void)prefix6; /* lwIP keeps no prefix length: on-link is nd6's prefix list */
  }
  netif_set_up(&ncf_netif);
#if LWIP_IPV6 && LWIP_IPV6_SEND_ROUTER_SOLICIT
  ncf_netif.rs_count = 0;
#endif
  if (preresolve && peer_v6->family == 6 && v6->family == 6) {
    int slot = -1;
    for (int i = 0; i < LWIP_ND6_NUM_NEIGHBORS; i++) {
      if (neighbor_cache[i].state == ND6_NO_ENTRY) {
        slot = i;
        break;
      }
    }
    if (slot < 0) {
      UNLOCK_TCPIP_CORE();
      snprintf(err, errlen, "no free neighbour cache entry for the peer");
      return -ENOMEM;
    }
    struct nd6_neighbor_cache_entry *n = &neighbor_cache[slot];
    memset(n, 0, sizeof(*n));
    memcpy(n->next_hop_address.addr, peer_v6->bytes, 16);
    ip6_addr_clear_zone(&n->next_hop_address);
    n->netif = &ncf_netif;
    memcpy(n->lladdr, peer_mac, 6);
    n->isrouter = 0;
    n->counter.reachable_time = 0x7fffffffu; /* ms: ~24 days */
    n->state = ND6_REACHABLE;
  }
  UNLOCK_TCPIP_CORE();
  ncf_started = 1;

  if (preresolve && peer_v4->family == 4 && v4->family == 4) {
    /* An ARP reply from the peer to us: etharp_input makes a stable entry for a reply
     * addressed to this interface, and answers nothing. */
    uint8_t f[42];
    memcpy(f, mac, 6);
    memcpy(f + 6, peer_mac, 6);
    f[12] = 0x08; f[13] = 0x06;
    f[14] = 0x00; f[15] = 0x01; f[16] = 0x08; f[17] = 0x00; f[18] = 6; f[19] = 4;
    f[20] = 0x00; f[21] = 0x02;
    memcpy(f + 22, peer_mac, 6);
    memcpy(f + 28, peer_v4->bytes, 4);
    memcpy(f + 32, mac, 6);
    memcpy(f + 38, v4->bytes, 4);
    struct pbuf *p = pbuf_alloc(PBUF_RAW, sizeof(f), PBUF_POOL);
    if (p == NULL) {
      snprintf(err, errlen, "pbuf_alloc failed");
      return -ENOMEM;
    }
    pbuf_take(p, f, sizeof(f));
    if (ncf_netif.input(p, &ncf_netif) != ERR_OK) {
      pbuf_free(p);
      snprintf(err, errlen, "netif input of the pre-resolving ARP reply failed");
      return -EIO;
    }
  }
  return 0;
}

int ncf_netif_index(void) { return netif_get_index(&ncf_netif); }

/* ---- sockets ----------------------------------------------------------------------- */

static int nonblocking(int fd) {
  int flags = lwip_fcntl(fd, F_GETFL, 0);
  if (flags < 0 || lwip_fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    int e = fail();
    lwip_close(fd);
    return e;
  }
  return fd;
}

/* A new non-blocking socket: `udp` 0 TCP, 1 UDP; `family` 4 or 6 (IPv6: v6-only). */
int ncf_socket(int family, int udp) {
  int fd = lwip_socket(family == 6 ? AF_INET6 : AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (fd < 0) return fail();
  if (family == 6) {
    int one = 1;
    lwip_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  return nonblocking(fd);
}

int ncf_bind(int fd, const struct ncf_addr *a, uint16_t port) {
  struct sockaddr_storage ss;
  socklen_t len = to_sockaddr(a, port, &ss);
  return lwip_bind(fd, (struct sockaddr *)&ss, len) < 0 ? fail() : 0;
}

int ncf_reuseaddr(int fd) {
  int one = 1;
  return lwip_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ? fail() : 0;
}

int ncf_listen(int fd, int backlog) { return lwip_listen(fd, backlog) < 0 ? fail() : 0; }

static int wait_for(int fd, short events, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = events, .revents = 0};
  int n = lwip_poll(&p, 1, timeout_ms);
  if (n < 0) return fail();
  if (n == 0) return NCF_TIMEDOUT;
  return p.revents;
}

int ncf_accept(int fd, int timeout_ms) {
  int r = wait_for(fd, POLLIN, timeout_ms);
  if (r < 0) return r;
  int c = lwip_accept(fd, NULL, NULL);
  if (c < 0) return errno == EWOULDBLOCK ? NCF_TIMEDOUT : fail();
  return nonblocking(c);
}

int ncf_connect(int fd, const struct ncf_addr *a, uint16_t port) {
  struct sockaddr_storage ss;
  socklen_t len = to_sockaddr(a, port, &ss);
  if (lwip_connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) return fail();
  return 0;
}

static int so_error(int fd) {
  int e = 0;
  socklen_t len = sizeof(e);
  if (lwip_getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) return fail();
  return -e;
}

int ncf_wait_connected(int fd, int timeout_ms) {
  int r = wait_for(fd, POLLOUT, timeout_ms);
  if (r < 0) return r;
  int e = so_error(fd);
  if (e < 0) return e;
  /* POLLOUT with no error: connected when there is a peer. */
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (lwip_getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return fail();
  return 0;
}

int ncf_send(int fd, const uint8_t *buf, size_t len) {
  ssize_t n = lwip_send(fd, buf, len, MSG_DONTWAIT);
  return n < 0 ? fail() : (int)n;
}

int ncf_recv(int fd, uint8_t *buf, size_t max, int timeout_ms) {
  int r = wait_for(fd, POLLIN, timeout_ms);
  if (r < 0) return r;
  ssize_t n = lwip_recv(fd, buf, max, MSG_DONTWAIT);
  if (n < 0) return errno == EWOULDBLOCK ? NCF_TIMEDOUT : fail();
  return (int)n;
}

int ncf_sendto(int fd, const struct ncf_addr *a, uint16_t port, const uint8_t *buf,
               size_t len) {
  struct sockaddr_storage ss;
  socklen_t slen = to_sockaddr(a, port, &ss);
  ssize_t n = lwip_sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, slen);
  return n < 0 ? fail() : (int)n;
}

int ncf_recvfrom(int fd, uint8_t *buf, size_t max, int timeout_ms, struct ncf_addr *from,
                 uint16_t *port) {
  int r = wait_for(fd, POLLIN, timeout_ms);
  if (r < 0) return r;
  struct sockaddr_storage ss;
  socklen_t slen = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  ssize_t n = lwip_recvfrom(fd, buf, max, MSG_DONTWAIT, (struct sockaddr *)&ss, &slen);
  if (n < 0) return errno == EWOULDBLOCK ? NCF_TIMEDOUT : fail();
  from_sockaddr(&ss, from, port);
  return (int)n;
}

int ncf_shutdown(int fd, int how) {
  int h = how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR;
  return lwip_shutdown(fd, h) < 0 ? fail() : 0;
}

int ncf_close(int fd) { return lwip_close(fd) < 0 ? fail() : 0; }

/* Socket options, by the harness's names. */
enum ncf_option {
  NCF_KEEPALIVE = 0,
  NCF_KEEPIDLE = 1,
  NCF_KEEPINTVL = 2,
  NCF_KEEPCNT = 3,
  NCF_NODELAY = 4,
  NCF_LINGER = 5, /* value: -1 off, else seconds */
  NCF_RCVBUF = 6,
};

static int option(int which, int *level, int *name) {
  switch (which) {
  case NCF_KEEPALIVE: *level = SOL_SOCKET; *name = SO_KEEPALIVE; return 0;
  case NCF_KEEPIDLE: *level = IPPROTO_TCP; *name = TCP_KEEPIDLE; return 0;
  case NCF_KEEPINTVL: *level = IPPROTO_TCP; *name = TCP_KEEPINTVL; return 0;
  case NCF_KEEPCNT: *level = IPPROTO_TCP; *name = TCP_KEEPCNT; return 0;
  case NCF_NODELAY: *level = IPPROTO_TCP; *name = TCP_NODELAY; return 0;
  case NCF_RCVBUF: *level = SOL_SOCKET; *name = SO_RCVBUF; return 0;
  default: return -ENOPROTOOPT;
  }
}

/* Sets option `which` to `value`, then reads it back into `*out`. */
int ncf_setopt(int fd, int which, int value, int *out) {
  if (which == NCF_LINGER) {
    struct linger l = {.l_onoff = value >= 0, .l_linger = value >= 0 ? value : 0};
    if (lwip_setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0) return fail();
    socklen_t len = sizeof(l);
    if (lwip_getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) < 0) return fail();
    *out = l.l_onoff ? l.l_linger : -1;
    return 0;
  }
  int level, name;
  int r = option(which, &level, &name);
  if (r < 0) return r;
  if (lwip_setsockopt(fd, level, name, &value, sizeof(value)) < 0) return fail();
  socklen_t len = sizeof(*out);
  if (lwip_getsockopt(fd, level, name, out, &len) < 0) return fail();
  return 0;
}

/* ---- state ------------------------------------------------------------------------- */

/* One TCP pcb. `held`: the index into the fds given of the socket that owns it, or -1. */
struct ncf_pcb {
  int state; /* lwIP's enum tcp_state */
  struct ncf_addr local, remote;
  uint16_t local_port, remote_port;
  uint32_t recv_queue, send_queue;
  int held;
};

static void *pcb_of_fd(int fd) {
  struct lwip_sock *s = lwip_socket_dbg_get_socket(fd);
  if (s == NULL || s->conn == NULL) return NULL;
  return s->conn->pcb.tcp;
}

static int held_by(void *pcb, const int *fds, int nfds) {
  for (int i = 0; i < nfds; i++)
    if (fds[i] >= 0 && pcb_of_fd(fds[i]) == pcb) return i;
  return -1;
}

static uint32_t rcv_queued(const struct tcp_pcb *p) {
  /* Bytes taken in but not yet read by the application: lwIP opens its receive window
   * again only as the application reads (tcp_recved). */
  uint32_t full = TCP_WND_MAX(p);
  return p->rcv_wnd < full ? full - p->rcv_wnd : 0;
}

/* Every TCP pcb (listeners, bound, active, TIME-WAIT), at most `max`; returns how many
 * there are (which may exceed max). */
int ncf_tcp_pcbs(struct ncf_pcb *out, int max, const int *fds, int nfds) {
  int n = 0;
  LOCK_TCPIP_CORE();
  for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs; l != NULL; l = l->next) {
    if (n < max) {
      struct ncf_pcb *o = &out[n];
      memset(o, 0, sizeof(*o));
      o->state = l->state;
      from_ip(&l->local_ip, &o->local);
      o->remote.family = o->local.family;
      o->local_port = l->local_port;
      o->recv_queue = 0;
#if TCP_LISTEN_BACKLOG
      o->recv_queue = l->accepts_pending;
      o->send_queue = l->backlog;
#endif
      o->held = held_by(l, fds, nfds);
    }
    n++;
  }
  struct tcp_pcb *lists[3] = {tcp_bound_pcbs, tcp_active_pcbs, tcp_tw_pcbs};
  for (int k = 0; k < 3; k++) {
    for (struct tcp_pcb *p = lists[k]; p != NULL; p = p->next) {
      if (n < max) {
        struct ncf_pcb *o = &out[n];
        memset(o, 0, sizeof(*o));
        o->state = p->state;
        from_ip(&p->local_ip, &o->local);
        from_ip(&p->remote_ip, &o->remote);
        o->local_port = p->local_port;
        o->remote_port = p->remote_port;
        if (p->state != TIME_WAIT && p->state != CLOSED) {
          o->recv_queue = rcv_queued(p);
          o->send_queue = TCP_SND_BUF - p->snd_buf;
        }
        o->held = held_by(p, fds, nfds);
      }
      n++;
    }
  }
  UNLOCK_TCPIP_CORE();
  return n;
}

/* What lwIP keeps of TCP_INFO. */
struct ncf_tcp_info {
  int state;
  int window_scaling;
  uint8_t snd_wscale, rcv_wscale, retransmits, probes, backoff;
  uint32_t rto_us, snd_mss, unacked, rtt_us, rttvar_us, snd_ssthresh, snd_cwnd;
};

int ncf_tcp_info(int fd, struct ncf_tcp_info *info) {
  memset(info, 0, sizeof(*info));
  LOCK_TCPIP_CORE();
  struct lwip_sock *s = lwip_socket_dbg_get_socket(fd);
  if (s == NULL || s->conn == NULL || s->conn->pcb.tcp == NULL ||
      NETCONNTYPE_GROUP(s->conn->type) != NETCONN_TCP) {
    UNLOCK_TCPIP_CORE();
    return -ENOTCONN;
  }
  struct tcp_pcb *p = s->conn->pcb.tcp;
  info->state = p->state;
  if (p->state == LISTEN) {
    UNLOCK_TCPIP_CORE();
    return 0;
  }
  const uint32_t tick_us = TCP_SLOW_INTERVAL * 1000u;
#if LWIP_WND_SCALE
  info->window_scaling = (p->flags & TF_WND_SCALE) != 0;
  info->snd_wscale = p->snd_scale;
  info->rcv_wscale = p->rcv_scale;
#endif
  info->retransmits = p->nrtx;
  info->probes = p->persist_probe ? p->persist_probe : p->keep_cnt_sent;
  info->backoff = p->persist_backoff;
  info->rto_us = (uint32_t)(p->rto > 0 ? p->rto : 0) * tick_us;
  info->snd_mss = p->mss;
  for (struct tcp_seg *seg = p->unacked; seg != NULL; seg = seg->next) info->unacked++;
  info->rtt_us = (uint32_t)((p->sa > 0 ? p->sa : 0) >> 3) * tick_us;
  info->rttvar_us = (uint32_t)((p->sv > 0 ? p->sv : 0) >> 2) * tick_us;
  uint32_t mss = p->mss ? p->mss : 1;
  info->snd_ssthresh = p->ssthresh / mss;
  info->snd_cwnd = p->cwnd / mss;
  UNLOCK_TCPIP_CORE();
  return 0;
}

/* One stable ARP entry (lwIP's API shows no pending ones). */
struct ncf_arp {
  uint8_t ip[4];
  uint8_t mac[6];
  int ifindex;
};

int ncf_arp_entries(struct ncf_arp *out, int max) {
  int n = 0;
  LOCK_TCPIP_CORE();
  for (size_t i = 0; i < ARP_TABLE_SIZE && n < max; i++) {
    ip4_addr_t *ip;
    struct netif *nif;
    struct eth_addr *eth;
    if (etharp_get_entry(i, &ip, &nif, &eth)) {
      uint32_t v = ip4_addr_get_u32(ip);
      memcpy(out[n].ip, &v, 4);
      memcpy(out[n].mac, eth->addr, 6);
      out[n].ifindex = netif_get_index(nif);
      n++;
    }
  }
  UNLOCK_TCPIP_CORE();
  return n;
}

/* Forgets every dynamic ARP entry of the interface. */
int ncf_arp_flush(void) {
  LOCK_TCPIP_CORE();
  etharp_cleanup_netif(&ncf_netif);
  UNLOCK_TCPIP_CORE();
  return 0;
}

/* The route lookup: lwIP's choice of interface for `dst` (ip4_route / ip6_route), its
 * next hop and the source address it would use. Returns 0, or -ENETUNREACH (no
 * interface). `kind`: 0 unicast, 1 local (one of the interface's own addresses). */
int ncf_route(const struct ncf_addr *dst, int *ifindex, struct ncf_addr *gateway,
              int *has_gateway, struct ncf_addr *src, int *kind) {
  ip_addr_t d;
  to_ip(dst, &d);
  *has_gateway = 0;
  *kind = 0;
  LOCK_TCPIP_CORE();
  struct netif *nif = NULL;
  if (IP_IS_V4(&d)) {
    nif = ip4_route(ip_2_ip4(&d));
    if (nif != NULL) {
      *ifindex = netif_get_index(nif);
      const ip4_addr_t *own = netif_ip4_addr(nif);
      ip_addr_t s;
      ip_addr_copy_from_ip4(s, *own);
      from_ip(&s, src);
      if (ip4_addr_cmp(ip_2_ip4(&d), own)) {
        *kind = 1;
      } else if (!ip4_addr_netcmp(ip_2_ip4(&d), own, netif_ip4_netmask(nif)) &&
                 !ip4_addr_isany_val(*netif_ip4_gw(nif))) {
        ip_addr_t g;
        ip_addr_copy_from_ip4(g, *netif_ip4_gw(nif));
        from_ip(&g, gateway);
        *has_gateway = 1;
      }
    }
  } else {
    nif = ip6_route(NULL, ip_2_ip6(&d));
    if (nif != NULL) {
      *ifindex = netif_get_index(nif);
      const ip_addr_t *s = ip6_select_source_address(nif, ip_2_ip6(&d));
      if (s != NULL) from_ip(s, src);
      else memset(src, 0, sizeof(*src));
      if (netif_get_ip6_addr_match(nif, ip_2_ip6(&d)) >= 0) *kind = 1;
    }
  }
  UNLOCK_TCPIP_CORE();
  return nif == NULL ? -ENETUNREACH : 0;
}

/* Sets (or with a zero gateway clears) the interface's default gateway. */
int ncf_set_gateway(const uint8_t gw[4]) {
  ip4_addr_t g;
  uint32_t v;
  memcpy(&v, gw, 4);
  ip4_addr_set_u32(&g, v);
  LOCK_TCPIP_CORE();
  netif_set_gw(&ncf_netif, &g);
  UNLOCK_TCPIP_CORE();
  return 0;
}

/* The interface's addresses, for the route list: IPv4 address, netmask, gateway. */
void ncf_ipv4(uint8_t addr[4], uint8_t mask[4], uint8_t gw[4]) {
  LOCK_TCPIP_CORE();
  uint32_t a = ip4_addr_get_u32(netif_ip4_addr(&ncf_netif));
  uint32_t m = ip4_addr_get_u32(netif_ip4_netmask(&ncf_netif));
  uint32_t g = ip4_addr_get_u32(netif_ip4_gw(&ncf_netif));
  UNLOCK_TCPIP_CORE();
  memcpy(addr, &a, 4);
  memcpy(mask, &m, 4);
  memcpy(gw, &g, 4);
}
