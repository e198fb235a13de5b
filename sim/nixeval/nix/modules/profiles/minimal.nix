# Stub of nixpkgs' module: a smaller closure; nothing the network depends on.
{ lib, ... }:
{
  documentation.enable = lib.mkDefault false;
}
