# The IPv6 gateway is outside the /64 and nothing routes to it on the link.
{ lib, ... }:
{
  networking.useDHCP = false;
  networking.usePredictableInterfaceNames = false;
  networking.interfaces.eth0 = {
    ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 24; } ];
    ipv6.addresses = [ { address = "2001:db8:1:10::1"; prefixLength = 64; } ];
  };
  networking.defaultGateway = "203.0.113.254";
  networking.defaultGateway6 = "2001:db8:1:ff:ff:ff:ff:ff";
  networking.nameservers = [ "213.186.33.99" ];
}
