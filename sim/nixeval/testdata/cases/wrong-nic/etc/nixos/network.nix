# eth0 is the rescue system's name for the NIC; with predictable names on,
# the installed kernel calls it enp3s0 and this file configures nothing.
{ lib, ... }:
{
  networking.useDHCP = false;
  networking.interfaces.eth0 = {
    ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 24; } ];
    ipv6.addresses = [ { address = "2001:db8:1:10::1"; prefixLength = 64; } ];
  };
  networking.defaultGateway = "203.0.113.254";
  networking.defaultGateway6 = { address = "2001:db8:1:ff:ff:ff:ff:ff"; interface = "eth0"; };
  networking.nameservers = [ "213.186.33.99" ];
}
