# Stub of nixpkgs' module: enables non-free firmware for hardware that
# nixos-generate-config did not recognise.
{ lib, ... }:
{
  hardware.enableRedistributableFirmware = lib.mkDefault true;
}
