package edgelab

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddClientAddr gives the client host a second address on its segment
// (ip/24 on eth0), e.g. one outside a Service's loadBalancerSourceRanges;
// DialFrom and HTTPFrom use it as the source address.
func (l *Lab) AddClientAddr(ip netip.Addr) error {
	link, err := l.Client.nl.LinkByName("eth0")
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}
	if err := l.Client.nl.AddrAdd(link, a); err != nil {
		return fmt.Errorf("%s: add %s: %w", l.Client.NS, ip, err)
	}
	return nil
}

// DialFrom opens a TCP connection to addr from the client host with
// source address src (the host's own or one AddClientAddr gave it).
func (l *Lab) DialFrom(ctx context.Context, src netip.Addr, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(l.Client, func() error {
		var err error
		d := net.Dialer{Timeout: viaTimeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// HTTPFrom is HTTPVia(l.Client) with source address src.
func (l *Lab) HTTPFrom(src netip.Addr) *http.Client {
	return &http.Client{Timeout: viaTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return l.DialFrom(ctx, src, addr)
		},
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // a test checks the certificate itself
	}}
}
