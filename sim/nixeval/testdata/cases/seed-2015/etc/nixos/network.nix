# As the 2015 Kimsufi post writes it: the predicted name, the old ip4/ip6
# option names, and defaultGateway6 without the route the old Arch
# configuration added by hand.
{ config, pkgs, ... }:
{
  networking = {
    interfaces.enp3s0 = {
      ip4 = [ { address = "203.0.113.10"; prefixLength = 24; } ];
      ip6 = [ { address = "2001:db8:1:10::1"; prefixLength = 64; } ];
    };
    defaultGateway = "203.0.113.254";
    defaultGateway6 = "2001:db8:1:ff:ff:ff:ff:ff";
    nameservers = [ "213.186.33.99" "2001:41d0:3:163::1" ];
  };
}
