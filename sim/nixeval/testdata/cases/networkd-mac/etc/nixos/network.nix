# systemd-networkd, matched by MAC so the kernel's name does not matter.
{ lib, ... }:
{
  networking.useDHCP = false;
  networking.useNetworkd = true;
  systemd.network.networks."10-uplink" = {
    matchConfig.MACAddress = "52:54:00:12:34:56";
    address = [ "203.0.113.10/24" "2001:db8:1:10::1/64" ];
    gateway = [ "203.0.113.254" ];
    routes = [ { routeConfig = { Gateway = "2001:db8:1:ff:ff:ff:ff:ff"; GatewayOnLink = true; }; } ];
    networkConfig.IPv6AcceptRA = false;
  };
}
