# The NIC is renamed by MAC to a name of our own, as nixos-infect pins it.
{ lib, ... }:
{
  networking.useDHCP = false;
  services.udev.extraRules = ''
    SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="52:54:00:12:34:56", NAME="wan0"
  '';
  networking.interfaces.wan0.ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 24; } ];
  networking.defaultGateway = { address = "203.0.113.254"; interface = "wan0"; };
}
