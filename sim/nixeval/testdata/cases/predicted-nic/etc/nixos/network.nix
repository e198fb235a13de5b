# The name `udevadm test-builtin net_id` predicted in the rescue system.
{ lib, ... }:
{
  networking.useDHCP = false;
  networking.interfaces.enp3s0 = {
    ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 24; } ];
    ipv6.addresses = [ { address = "2001:db8:1:10::1"; prefixLength = 64; } ];
    ipv6.routes = [ { address = "2001:db8:1:ff:ff:ff:ff:ff"; prefixLength = 128; } ];
  };
  networking.defaultGateway = "203.0.113.254";
  networking.defaultGateway6 = "2001:db8:1:ff:ff:ff:ff:ff";
  networking.nameservers = [ "213.186.33.99" ];
}
