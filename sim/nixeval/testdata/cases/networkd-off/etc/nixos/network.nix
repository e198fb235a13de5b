# A networkd unit without networkd: nothing configures the NIC.
{ lib, ... }:
{
  networking.useDHCP = false;
  systemd.network.networks."10-uplink" = {
    matchConfig.Name = "en* eth0";
    address = [ "203.0.113.10/24" ];
    gateway = [ "203.0.113.254" ];
  };
}
