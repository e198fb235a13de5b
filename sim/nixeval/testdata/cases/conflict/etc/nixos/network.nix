{ lib, ... }:
{
  networking.hostName = "ks1.example.org";
  networking.useDHCP = false;
  networking.usePredictableInterfaceNames = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 24; } ];
  networking.defaultGateway = "203.0.113.254";
}
