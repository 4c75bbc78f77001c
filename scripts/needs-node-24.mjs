// First step of `npm run build`: plain JavaScript, so that an older Node says why instead of failing half-way.
if (Number(process.versions.node.split('.')[0]) < 24) {
  console.error(`sluice: needs Node.js 24 or newer (this is ${process.version}); see README.md, "Try it"`);
  process.exit(1);
}
