{ lib, ... }:
{
  networking.useDHCP = false;
  networking.usePredictableInterfaceNames = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = "203.0.113.10"; prefixLength = 32; } ];
  networking.defaultGateway = "203.0.113.1";
}
